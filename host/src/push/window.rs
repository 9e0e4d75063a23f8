//! The merge window both kinds of push share (UDP subscribers and gRPC
//! stream subscribers): a change schedules one push of its service after the
//! window; more changes to that service inside the window ride along, so a
//! burst becomes one push carrying the final state. Nacos waits 500 ms
//! (1 s in 1.x); Nacre's window is milliseconds (`push.merge_window_ms`).

use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::registry::FastHash;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;

/// Services with a push waiting in its window.
pub struct MergeWindow {
    scheduled: DashMap<ServiceKey, (), FastHash>,
    /// Scheduled pushes and when they fall due: unbounded, but never longer
    /// than the services with a push scheduled.
    due: mpsc::UnboundedSender<(ServiceKey, Instant)>,
    window: Duration,
}

/// The pushes falling due, for the one task that sends them.
pub struct DuePushes(mpsc::UnboundedReceiver<(ServiceKey, Instant)>);

impl MergeWindow {
    /// A window of `window`, and the receiving end its sending task reads.
    pub fn new(window: Duration) -> (MergeWindow, DuePushes) {
        let (due, receiver) = mpsc::unbounded_channel();
        let window = MergeWindow {
            scheduled: DashMap::default(),
            due,
            window,
        };
        (window, DuePushes(receiver))
    }

    /// Schedules a push of `service`, unless one is already waiting.
    pub(crate) fn schedule(&self, service: &ServiceKey) {
        if self.scheduled.insert(service.clone(), ()).is_some() {
            return;
        }
        let _ = self
            .due
            .send((service.clone(), Instant::now() + self.window));
    }
}

impl DuePushes {
    /// The next service whose window has ended, or `None` at shutdown.
    /// (Windows are all the same length, so pushes fall due in the order
    /// they were scheduled.) The service is unscheduled before it is
    /// returned: a change from then on gets a push of its own.
    pub async fn next(
        &mut self,
        window: &MergeWindow,
        shutdown: &mut Shutdown,
    ) -> Option<ServiceKey> {
        let (service, at) = tokio::select! {
            next = self.0.recv() => next?,
            _ = shutdown.recv() => return None,
        };
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = shutdown.recv() => return None,
        }
        window.scheduled.remove(&service);
        Some(service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_in_the_window_is_one_push() {
        let (window, mut due) = MergeWindow::new(Duration::from_millis(5));
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "s");
        for _ in 0..10 {
            window.schedule(&key);
        }
        assert_eq!(due.next(&window, &mut shutdown).await, Some(key.clone()));
        window.schedule(&key);
        assert_eq!(due.next(&window, &mut shutdown).await, Some(key));
    }
}
