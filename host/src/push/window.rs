//! The merge window both kinds of push share (UDP subscribers and gRPC
//! stream subscribers), with a leading edge: a change to a service that
//! was not pushed within the last window is pushed at once; changes while
//! a push of it is due, or within a window after one, ride along in one
//! push at that window's end. So an isolated change waits for nothing, a
//! burst within one window becomes at most two pushes (its first change,
//! then the final state), and a longer one one push per window after the
//! first. Nacos waits
//! 500 ms (1 s in 1.x) before every push; Nacre's window is milliseconds
//! (`push.merge_window_ms`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::registry::FastHash;
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;

/// Where one service stands.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// A push is scheduled and not yet taken.
    Due,
    /// Its last push was taken at this instant: a change within a window
    /// after it waits for the window's end.
    Quiet(Instant),
}

/// Services with a push scheduled or pushed within the last window.
pub struct MergeWindow {
    phases: DashMap<ServiceKey, Phase, FastHash>,
    /// Scheduled pushes and when they fall due: unbounded, but never longer
    /// than the services with a push scheduled.
    due: mpsc::UnboundedSender<(ServiceKey, Instant)>,
    window: Duration,
}

/// The pushes falling due, for the one task that sends them, earliest
/// first.
pub struct DuePushes {
    scheduled: mpsc::UnboundedReceiver<(ServiceKey, Instant)>,
    waiting: BinaryHeap<Reverse<(Instant, ServiceKey)>>,
    /// When quiet services were last forgotten.
    swept: Instant,
}

impl MergeWindow {
    /// A window of `window`, and the receiving end its sending task reads.
    pub fn new(window: Duration) -> (MergeWindow, DuePushes) {
        let (due, scheduled) = mpsc::unbounded_channel();
        let window = MergeWindow {
            phases: DashMap::default(),
            due,
            window,
        };
        let pushes = DuePushes {
            scheduled,
            waiting: BinaryHeap::new(),
            swept: Instant::now(),
        };
        (window, pushes)
    }

    /// Schedules a push of `service`: now if it was not pushed within the
    /// last window, at that window's end if it was, not at all if one is
    /// already due.
    pub(crate) fn schedule(&self, service: &ServiceKey) {
        let now = Instant::now();
        let at = match self.phases.entry(service.clone()) {
            Entry::Vacant(vacant) => {
                vacant.insert(Phase::Due);
                now
            }
            Entry::Occupied(mut held) => match *held.get() {
                Phase::Due => return,
                Phase::Quiet(pushed) => {
                    held.insert(Phase::Due);
                    (pushed + self.window).max(now)
                }
            },
        };
        let _ = self.due.send((service.clone(), at));
    }

    /// Marks `service`'s push as taken now: a change from then on gets a
    /// push of its own, after the window.
    fn taken(&self, service: &ServiceKey) {
        self.phases
            .insert(service.clone(), Phase::Quiet(Instant::now()));
    }

    /// Forgets services quiet for a whole window (a change to one is pushed
    /// at once again): keeps the map to the services pushed lately.
    fn sweep(&self) {
        let now = Instant::now();
        self.phases.retain(|_, phase| match phase {
            Phase::Due => true,
            Phase::Quiet(pushed) => *pushed + self.window > now,
        });
    }
}

/// How often the sending task forgets quiet services.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

impl DuePushes {
    /// The next service whose push is due, or `None` at shutdown. The
    /// service is marked taken before it is returned: a change from then on
    /// gets a push of its own. (The channel cannot close while `window`,
    /// which holds its sender, is borrowed here; `None` on a closed channel
    /// is for completeness.)
    pub async fn next(
        &mut self,
        window: &MergeWindow,
        shutdown: &mut Shutdown,
    ) -> Option<ServiceKey> {
        loop {
            // Pushes due at shutdown are not sent: the node is going.
            if shutdown.is_shutdown() {
                return None;
            }
            while let Ok((service, at)) = self.scheduled.try_recv() {
                self.waiting.push(Reverse((at, service)));
            }
            let now = Instant::now();
            if now >= self.swept + SWEEP_EVERY {
                window.sweep();
                self.swept = now;
            }
            let earliest = self.waiting.peek().map(|Reverse((at, _))| *at);
            if earliest.is_some_and(|at| at <= now) {
                let Reverse((_, service)) = self.waiting.pop()?;
                window.taken(&service);
                return Some(service);
            }
            // Nothing due yet: wait for the earliest (if any), a newly
            // scheduled push, or shutdown.
            let earliest_due = async {
                match earliest {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                next = self.scheduled.recv() => {
                    let (service, at) = next?;
                    self.waiting.push(Reverse((at, service)));
                }
                _ = earliest_due => {}
                _ = shutdown.recv() => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_millis(50);

    fn key(name: &str) -> ServiceKey {
        ServiceKey::new("public", "DEFAULT_GROUP", name)
    }

    /// The push falling due within a second of (paused) time, if any:
    /// a lost push fails a test instead of hanging it.
    async fn due_within_a_second(
        due: &mut DuePushes,
        window: &MergeWindow,
        shutdown: &mut Shutdown,
    ) -> Option<ServiceKey> {
        tokio::time::timeout(Duration::from_secs(1), due.next(window, shutdown))
            .await
            .ok()
            .map(|pushed| pushed.expect("not shut down"))
    }

    /// The push falling due within a second; failing if none does.
    async fn next(
        due: &mut DuePushes,
        window: &MergeWindow,
        shutdown: &mut Shutdown,
    ) -> ServiceKey {
        due_within_a_second(due, window, shutdown)
            .await
            .expect("a push falls due")
    }

    /// Ten changes to `s` at once: how long until its push fell due.
    async fn burst(
        s: &ServiceKey,
        due: &mut DuePushes,
        window: &MergeWindow,
        shutdown: &mut Shutdown,
    ) -> Duration {
        let start = Instant::now();
        for _ in 0..10 {
            window.schedule(s);
        }
        assert_eq!(&next(due, window, shutdown).await, s);
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn an_isolated_change_goes_at_once_a_burst_after_it_waits_for_the_window() {
        let (window, mut due) = MergeWindow::new(WINDOW);
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let s = key("s");
        assert_eq!(
            burst(&s, &mut due, &window, &mut shutdown).await,
            Duration::ZERO,
            "the first change waits for nothing"
        );
        // The burst's other changes rode along; the next ones wait for the
        // window after the push, and go as one.
        assert_eq!(
            burst(&s, &mut due, &window, &mut shutdown).await,
            WINDOW,
            "one push per window after the first"
        );
        assert_eq!(
            due_within_a_second(&mut due, &window, &mut shutdown).await,
            None,
            "a burst is one push"
        );
        // Quiet for a window: the next change goes at once again.
        let quiet = Instant::now();
        window.schedule(&s);
        assert_eq!(next(&mut due, &window, &mut shutdown).await, s);
        assert_eq!(quiet.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn pushes_fall_due_in_time_order_whatever_the_order_scheduled() {
        let (window, mut due) = MergeWindow::new(WINDOW);
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let (a, b) = (key("a"), key("b"));
        window.schedule(&a);
        assert_eq!(next(&mut due, &window, &mut shutdown).await, a);
        window.schedule(&a); // due at the end of a's window
        window.schedule(&b); // never pushed: due now
        assert_eq!(next(&mut due, &window, &mut shutdown).await, b);
        assert_eq!(next(&mut due, &window, &mut shutdown).await, a);
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_services_are_forgotten_due_ones_kept() {
        let (window, mut due) = MergeWindow::new(WINDOW);
        let (_trigger, mut shutdown) = crate::shutdown::channel();
        let (quiet, pending) = (key("quiet"), key("pending"));
        window.schedule(&quiet);
        assert_eq!(next(&mut due, &window, &mut shutdown).await, quiet);
        window.schedule(&pending);
        tokio::time::advance(WINDOW).await;
        window.sweep();
        assert_eq!(window.phases.len(), 1, "only the due one is kept");
        assert_eq!(next(&mut due, &window, &mut shutdown).await, pending);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_sent_after_shutdown() {
        let (window, mut due) = MergeWindow::new(WINDOW);
        let (trigger, mut shutdown) = crate::shutdown::channel();
        window.schedule(&key("s"));
        trigger.trigger();
        assert_eq!(due.next(&window, &mut shutdown).await, None);
    }
}
