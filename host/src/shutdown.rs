//! Shutdown as a type: every background task holds a [`Shutdown`] and selects
//! on [`Shutdown::recv`]; the node holds the one [`ShutdownTrigger`].

use tokio::sync::watch;

/// Fires shutdown for every [`Shutdown`] made from the same channel.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Lets a task learn that the node is stopping. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A trigger and a first [`Shutdown`]; more come from [`ShutdownTrigger::subscribe`].
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Tells every [`Shutdown`] that the node is stopping (idempotent).
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// One more [`Shutdown`] of this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Whether shutdown has been triggered, without waiting.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown has been triggered (or the trigger dropped).
    pub async fn recv(&mut self) {
        // An error means the trigger is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trigger_wakes_every_clone() {
        let (trigger, shutdown) = channel();
        let mut a = shutdown.clone();
        let mut b = trigger.subscribe();
        assert!(!a.is_shutdown());
        trigger.trigger();
        a.recv().await;
        b.recv().await;
        assert!(shutdown.is_shutdown());
    }
}
