//! Notices when the test process itself stops running. On a loaded machine
//! the kernel may not schedule it for seconds (seen: 13 s at a load of 11 on
//! two cores); the clients' clocks then measure the harness, not the nodes,
//! and the member links — proxied in this process — stand still, as if every
//! member were cut off. Such stalls are recorded in the history; the checker
//! judges no request's time across one and the report shows them.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::history::{At, Fault, History};

/// How often the watchdog wakes.
const TICK: Duration = Duration::from_millis(10);
/// A wake-up this much later than asked is a stall.
pub const STALL_MS: u64 = 100;

/// Runs until aborted, recording every stall.
pub fn watch(history: History) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let asked = Instant::now();
            tokio::time::sleep(TICK).await;
            let late = asked.elapsed().saturating_sub(TICK);
            if late.as_millis() as u64 > STALL_MS {
                let now = history.now();
                let from = At(now.0.saturating_sub(late.as_micros() as u64));
                history.event(Fault::Stalled { from });
            }
        }
    })
}
