//! A thread of its own for each plugin that runs while clients wait (health
//! policies, push filters), fed by a bounded queue.
//!
//! A request hands the call to the plugin's worker and awaits the answer for
//! at most what is left of its budget; it never runs the plugin on the
//! thread that serves it, and never waits on a lock the plugin holds. So a
//! slow plugin delays only the requests that consult it (by at most
//! [`super::limits::REQUEST_PATH_WAIT`]), and when its queue is full a
//! request goes on without it at once. Each plugin has its own worker, so one
//! plugin's backlog never queues another plugin's calls.
//!
//! The worker runs its calls inside a (current-thread) Tokio runtime, like
//! the API's workers and the listener thread: a WASI call that would block
//! then fails the plugin call instead of holding the thread (see
//! [`super::failure::guarded`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use wasmtime::Store;

use super::super::error::{PluginError, printable};
use super::limits::WORKER_QUEUE;
use super::plugin::{Bound, Plugin};
use super::store::StoreState;

/// One queued call.
pub type Job = Box<dyn FnOnce() + Send>;

/// The sending end of a plugin's worker. The thread ends when this is
/// dropped (with the plugin) and its queue has drained; each queued call is
/// bounded by the plugin's deadline.
pub struct Worker {
    queue: SyncSender<Job>,
}

impl Worker {
    /// Starts the worker thread of plugin `name`.
    pub fn start(name: &str) -> std::io::Result<Worker> {
        let (queue, jobs) = sync_channel::<Job>(WORKER_QUEUE);
        let runtime = tokio::runtime::Builder::new_current_thread().build()?;
        std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || runtime.block_on(run(jobs)))?;
        Ok(Worker { queue })
    }

    /// Queues `job`; `false` if the queue is full (or the thread is gone).
    pub(crate) fn submit(&self, job: Job) -> bool {
        match self.queue.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Runs queued calls one after the other until the queue's sender is gone.
/// (Blocking in `recv` is fine: nothing else runs on this runtime.)
async fn run(jobs: Receiver<Job>) {
    while let Ok(job) = jobs.recv() {
        job();
    }
}

impl Plugin {
    /// Runs [`Self::call_checked`] on the plugin's worker thread (see
    /// [`super::worker`]) and waits for the outcome until `until` at the
    /// latest, without blocking the caller's thread. A call still queued when
    /// the caller stops waiting is not made; one already running finishes (or
    /// fails) under its own deadline.
    pub(crate) async fn call_off_thread<A: Send, R: Send + 'static>(
        self: &Arc<Self>,
        until: tokio::time::Instant,
        f: impl FnOnce(&mut Store<StoreState>, &Bound) -> wasmtime::Result<A> + Send + 'static,
        check: impl FnOnce(A) -> Result<R, PluginError> + Send + 'static,
    ) -> Result<R, PluginError> {
        if self.health.is_quarantined(Instant::now()) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return Err(PluginError::Quarantined);
        }
        let waited_from = tokio::time::Instant::now();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let plugin = Arc::clone(self);
        let job = Box::new(move || {
            if !answer.is_closed() {
                let _ = answer.send(plugin.call_checked(f, check));
            }
        });
        if !self.worker().is_some_and(|w| w.submit(job)) {
            self.stats.late.fetch_add(1, Ordering::Relaxed);
            return Err(PluginError::Busy);
        }
        match tokio::time::timeout_at(until, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(PluginError::Other("the plugin's worker stopped".into())),
            Err(_) => {
                self.stats.late.fetch_add(1, Ordering::Relaxed);
                Err(PluginError::Late {
                    waited_ms: waited_from.elapsed().as_millis() as u64,
                })
            }
        }
    }

    fn worker(&self) -> Option<&Worker> {
        self.worker
            .get_or_init(|| match Worker::start(&self.manifest.name) {
                Ok(worker) => Some(worker),
                Err(e) => {
                    tracing::error!(plugin = %self.manifest.name, error = %printable(&e.to_string(), 200), "cannot start the plugin's worker thread; its calls are skipped");
                    None
                }
            })
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::supervision::CallStats;
    use super::super::testing::{beat_context, components, plugin};
    use super::*;

    #[tokio::test]
    async fn a_caller_waits_at_most_until_its_limit_and_the_call_ends_at_its_deadline() {
        let spinner = plugin(
            "health-policy",
            &components::health_policy(components::INFINITE_LOOP, 3),
            "timeout_ms = 300",
        );
        let started = tokio::time::Instant::now();
        let answer = spinner
            .call_off_thread(
                started + Duration::from_millis(20),
                |store, bound| match bound {
                    Bound::HealthPolicy(h) => h.call_judge(store, &beat_context()),
                    _ => Err(wasmtime::Error::msg("not a health policy")),
                },
                Ok,
            )
            .await;
        assert!(
            matches!(answer, Err(PluginError::Late { .. })),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "did not wait for the plugin"
        );
        assert_eq!(CallStats::count(&spinner.stats.late), 1);
        // On its worker the call goes on until its own deadline, then counts as a failure.
        let deadline = Instant::now() + Duration::from_secs(10);
        while CallStats::count(&spinner.stats.failures) == 0 {
            assert!(Instant::now() < deadline, "the call never ended");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            spinner.last_error(),
            Some(PluginError::Timeout { timeout_ms: 300 })
        );
    }

    #[test]
    fn jobs_run_in_order_off_the_callers_thread_and_a_full_queue_refuses() {
        let worker = Worker::start("test").expect("started");
        let (gate_open, gate) = std::sync::mpsc::channel::<()>();
        let (done, finished) = std::sync::mpsc::channel::<(usize, std::thread::ThreadId)>();
        // The first job holds the thread until the gate opens; the queue then fills.
        assert!(worker.submit(Box::new(move || {
            let _ = gate.recv();
        })));
        let mut queued = 0;
        while queued < 10 * WORKER_QUEUE {
            let done = done.clone();
            if !worker.submit(Box::new(move || {
                let _ = done.send((queued, std::thread::current().id()));
            })) {
                break;
            }
            queued += 1;
        }
        assert!(
            // The gated job is in the queue or already taken off it.
            (WORKER_QUEUE - 1..=WORKER_QUEUE).contains(&queued),
            "queued {queued}"
        );
        gate_open.send(()).expect("gate");
        let ran: Vec<_> = (0..queued)
            .map(|_| finished.recv().expect("each queued job runs"))
            .collect();
        assert!(
            ran.iter().enumerate().all(|(i, (n, _))| i == *n),
            "in order"
        );
        assert!(ran.iter().all(|(_, t)| *t != std::thread::current().id()));
    }
}
