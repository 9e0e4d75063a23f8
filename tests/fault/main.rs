//! Fault injection with a history checker: issue 11's proof that Distro and
//! Raft keep every acknowledged write through kills, restarts and partitions.
//!
//! Each seed starts three `nacre` processes whose member links all go through
//! TCP proxies that can cut them, puts a Nacos-like load on them through
//! random members (ephemeral clients registering, beating — light and with a
//! body — and deregistering; persistent writers; listers), and injects the
//! six faults of [`nemesis::Kind`] in a seeded order. Every request is
//! recorded (`history`), then [`checker`] holds the record to:
//!
//! 1. no acknowledged registration lost: no beat of a registered, beating
//!    instance answered 20404, and after recovery every member lists every
//!    instance still registered (and, if ephemeral, beating);
//! 2. no acknowledged deregistration undone: no list that started
//!    `GONE_WITHIN_MS` after the acknowledgement shows it, unless registered
//!    again;
//! 3. no live instance missing: a list answered 200 holds every instance
//!    acknowledged `LISTED_WITHIN_MS` before it started, not deregistered,
//!    and (if ephemeral) beaten within the beat timeout; a member that is not
//!    ready answers 503;
//! 4. every write answered within its deadline (`settings`);
//! 5. nothing listed that nobody wrote.
//!
//! The one loss an AP registry cannot prevent — a write acknowledged by the
//! responsible member itself just before it was killed, before its sync
//! left — is measured (count, ms) and not counted; losses of writes a member
//! acknowledged around its being cut off are measured and counted
//! ([`window`]).
//!
//! `cargo test -p nacre-e2e --test fault` runs the CI seeds;
//! `NACRE_FAULT_SEED=<n>` replays one seed (the same schedule and client
//! choices; the processes' timing is the machine's); `NACRE_FAULT_SEEDS=<count>`
//! runs that many fresh seeds.

mod api;
mod checker;
mod clients;
mod history;
mod model;
mod nemesis;
mod report;
mod rng;
mod run;
mod selftest;
mod settings;
mod watchdog;
mod window;

use std::time::Duration;

use anyhow::ensure;

/// A seed takes 20-30 s; one that takes this long is wedged somewhere.
const SEED_LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_writes_survive_seeded_faults() -> anyhow::Result<()> {
    let seeds = settings::seeds()?;
    eprintln!("fault injection: seeds {seeds:?}");
    let mut failed = Vec::new();
    for seed in seeds {
        let run = tokio::time::timeout(SEED_LIMIT, run::run_seed(seed)).await;
        match run {
            Err(_) => {
                eprintln!("== seed {seed} did not finish within {SEED_LIMIT:?}");
                failed.push(seed);
            }
            Ok(Err(e)) => {
                eprintln!("== seed {seed} could not run: {e:#}");
                failed.push(seed);
            }
            Ok(Ok(run)) => {
                eprintln!("{}", report::render(&run));
                if !run.verdict.failures.is_empty() {
                    failed.push(seed);
                }
            }
        }
    }
    ensure!(
        failed.is_empty(),
        "seeds {failed:?} failed (see above); replay one with NACRE_FAULT_SEED=<seed>"
    );
    Ok(())
}
