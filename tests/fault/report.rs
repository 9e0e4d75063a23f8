//! What a seed's run prints: the schedule as it happened (with the measured
//! times to notice a cut and to converge), what the clients did, the AP
//! window, and every failure grouped by check and instance with its first
//! example in full.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::checker::{Check, Failure, stalled_during};
use crate::history::{Answer, At, Fault, Op};
use crate::run::SeedRun;
use crate::settings::AP_WINDOW_MS;

/// Failure groups printed per check (the rest are counted).
const GROUPS_SHOWN: usize = 6;

pub fn render(run: &SeedRun) -> String {
    let mut out = String::new();
    let status = if run.verdict.failures.is_empty() {
        "passed"
    } else {
        "FAILED"
    };
    let _ = writeln!(
        out,
        "== seed {} {status} in {:.1} s (replay: NACRE_FAULT_SEED={})",
        run.seed,
        run.took.as_secs_f64(),
        run.seed
    );
    if let Some(dir) = &run.saved {
        let _ = writeln!(out, "   history: {}", dir.display());
    }
    let _ = writeln!(out, "   t=0 is {} in the members' logs", run.wall_start);
    schedule(run, &mut out);
    traffic(run, &mut out);
    window(run, &mut out);
    failures(&run.verdict.failures, &mut out);
    out
}

fn schedule(run: &SeedRun, out: &mut String) {
    let mut line = String::from("   schedule:");
    let mut since: Option<(At, &str)> = None;
    let mut ready: Option<At> = None;
    for event in &run.events {
        let text = match &event.fault {
            Fault::Note(note) => format!(" | {note} at {:.1}s", event.at.0 as f64 / 1e6),
            Fault::Kill(m) => format!(" kill {m}"),
            Fault::Restart(m) => format!(" restart {m}"),
            Fault::Isolate(m) => format!(" cut {m}"),
            Fault::NoticedCut(m) => match since {
                Some((at, _)) => format!(" ({m} noticed in {:.0}ms)", event.at.ms_after(at)),
                None => format!(" ({m} noticed)"),
            },
            Fault::Heal(m) => format!(" heal {m}"),
            Fault::Stalled { from } => {
                format!(" [test process stalled {:.0}ms]", event.at.ms_after(*from))
            }
            Fault::KillAll => " kill all".into(),
            Fault::RestartAll => " restart all".into(),
            Fault::Converged => {
                ready = Some(event.at);
                match since {
                    Some((at, what)) => {
                        format!(" (ready {:.0}ms after {what}", event.at.ms_after(at))
                    }
                    None => " (ready".into(),
                }
            }
            Fault::RaftCaughtUp => match ready {
                Some(at) => format!(", Raft applied {:.0}ms later)", event.at.ms_after(at)),
                None => ")".into(),
            },
        };
        since = match &event.fault {
            Fault::Isolate(_) => Some((event.at, "the cut")),
            Fault::Restart(_) => Some((event.at, "restart")),
            Fault::RestartAll => Some((event.at, "restart")),
            Fault::Heal(_) => Some((event.at, "heal")),
            _ => since,
        };
        line.push_str(&text);
    }
    let _ = writeln!(out, "{line}");
}

fn traffic(run: &SeedRun, out: &mut String) {
    let mut counts: BTreeMap<&str, [usize; 4]> = BTreeMap::new();
    let mut slowest: BTreeMap<&str, f64> = BTreeMap::new();
    let mut stalled = 0;
    for r in &run.records {
        let kind = match &r.op {
            Op::Register {
                ephemeral: true, ..
            } => "ephemeral registers",
            Op::Register {
                ephemeral: false, ..
            } => "persistent registers",
            Op::Deregister {
                ephemeral: true, ..
            } => "ephemeral deregisters",
            Op::Deregister {
                ephemeral: false, ..
            } => "persistent deregisters",
            Op::Beat { .. } => "beats",
            Op::List { .. } => "lists",
        };
        let slot = match &r.answer {
            Answer::Done | Answer::Listed { .. } | Answer::Beat(10200) => 0,
            Answer::Beat(_) => 1,
            a if a.not_applied() => 2,
            _ => 3,
        };
        counts.entry(kind).or_default()[slot] += 1;
        if stalled_during(&run.events, r) {
            stalled += 1;
        } else if !matches!(
            r.answer,
            Answer::Refused | Answer::TimedOut | Answer::Broken(_)
        ) {
            let max = slowest.entry(kind).or_default();
            *max = max.max(r.latency_ms());
        }
    }
    for (kind, [ok, code, refused, unknown]) in counts {
        let _ = writeln!(
            out,
            "   {kind}: {ok} ok, {code} other beat codes, {refused} refused/not ready, {unknown} uncertain; slowest answer {:.0} ms",
            slowest.get(kind).copied().unwrap_or(0.0)
        );
    }
    if stalled > 0 {
        let _ = writeln!(
            out,
            "   {stalled} requests spanned a stall of the test process: their times are not judged"
        );
    }
}

fn window(run: &SeedRun, out: &mut String) {
    let writes = &run.verdict.window;
    let lost: Vec<String> = writes
        .iter()
        .filter(|w| w.lost)
        .map(|w| {
            let what = if w.registration {
                "registration"
            } else {
                "deregistration"
            };
            let how = if w.killed { "killed" } else { "cut off" };
            let when = if w.before_ms >= 0.0 {
                format!("{:.1} ms before node {} was {how}", w.before_ms, w.member)
            } else {
                format!(
                    "{:.1} ms after node {} was {how}, before it noticed",
                    -w.before_ms, w.member
                )
            };
            format!("{what} of {} acknowledged {when}", w.key)
        })
        .collect();
    let killed = writes.iter().filter(|w| w.killed).count();
    let _ = writeln!(
        out,
        "   AP window ({AP_WINDOW_MS} ms; losses after kills excused, after cuts failures): {killed} writes acknowledged by the owner just before it was killed, {} by a member around its cut; {} lost{}",
        writes.len() - killed,
        lost.len(),
        if lost.is_empty() {
            String::new()
        } else {
            format!(": {}", lost.join("; "))
        }
    );
}

fn failures(failures: &[Failure], out: &mut String) {
    let mut by_check: BTreeMap<Check, BTreeMap<String, Vec<&Failure>>> = BTreeMap::new();
    for failure in failures {
        let group = match (&failure.key, failure.member) {
            (Some(key), _) => key.to_string(),
            (None, Some(member)) => format!("node {member}"),
            (None, None) => String::new(),
        };
        by_check
            .entry(failure.check)
            .or_default()
            .entry(group)
            .or_default()
            .push(failure);
    }
    for (check, groups) in by_check {
        let total: usize = groups.values().map(Vec::len).sum();
        let _ = writeln!(
            out,
            "   check {check}: {total} failures in {} groups",
            groups.len()
        );
        for (group, list) in groups.iter().take(GROUPS_SHOWN) {
            let first = list[0];
            let members: std::collections::BTreeSet<usize> =
                list.iter().filter_map(|f| f.member).collect();
            let _ = writeln!(
                out,
                "     [{group}] {}x on nodes {members:?}, {} .. {}; first: {}",
                list.len(),
                first.at,
                list[list.len() - 1].at,
                first.what
            );
        }
        if groups.len() > GROUPS_SHOWN {
            let _ = writeln!(
                out,
                "     ... and {} more groups",
                groups.len() - GROUPS_SHOWN
            );
        }
    }
}
