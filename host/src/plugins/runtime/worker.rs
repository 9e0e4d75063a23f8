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

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use super::limits::WORKER_QUEUE;

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
    pub fn submit(&self, job: Job) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
