//! The checker: five properties over the recorded history (see the crate
//! doc for the statements), plus the measurement of the one window an AP
//! registry cannot close.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::history::{Answer, At, Event, Fault, InstanceKey, Op, Record};
use crate::model::{Presence, Timeline};
use crate::settings::{
    AP_WINDOW_MS, CLIENT_TIMEOUT_MS, GONE_WITHIN_MS, LISTED_WITHIN_MS, RAFT_WRITE_TIMEOUT_MS,
    REQUEST_TIMEOUT_MS, SLACK_MS,
};

/// Which property a failure breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Check {
    /// 1: no acknowledged registration lost.
    Lost,
    /// 2: no acknowledged deregistration undone.
    Undone,
    /// 3: no live instance missing from a ready member's list.
    Missing,
    /// 4: every write answered within its deadline.
    Late,
    /// 5: nothing listed that nobody wrote.
    Phantom,
    /// The cluster did not recover within the suite's bounds.
    Recovery,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Check::Lost => "1 acknowledged registration lost",
            Check::Undone => "2 acknowledged deregistration undone",
            Check::Missing => "3 live instance missing from a ready member's list",
            Check::Late => "4 write not answered within its deadline",
            Check::Phantom => "5 listed what nobody wrote",
            Check::Recovery => "recovery",
        })
    }
}

#[derive(Clone, Debug)]
pub struct Failure {
    pub check: Check,
    pub key: Option<InstanceKey>,
    pub member: Option<usize>,
    pub at: At,
    pub what: String,
}

/// A member out of reach: killed, or cut off until it noticed.
#[derive(Clone, Debug)]
pub struct Outage {
    pub member: usize,
    pub from: At,
    /// Until when the member could still acknowledge writes it could not sync.
    pub noticed: At,
    pub killed: bool,
}

/// One write inside the AP window, and whether it was lost.
#[derive(Clone, Debug)]
pub struct WindowWrite {
    pub key: InstanceKey,
    pub member: usize,
    pub killed: bool,
    /// Outage start minus acknowledgement, ms (negative: acknowledged after the cut).
    pub before_ms: f64,
    pub lost: bool,
}

pub struct Verdict {
    pub failures: Vec<Failure>,
    pub window: Vec<WindowWrite>,
}

/// What the checker needs besides the history.
pub struct Context<'a> {
    pub records: &'a [Record],
    pub events: &'a [Event],
    pub timelines: &'a BTreeMap<InstanceKey, Timeline>,
    /// The member responsible for each service while all three are up.
    pub owners: &'a BTreeMap<Arc<str>, usize>,
    /// When the clients were stopped (the recovery check follows).
    pub stopped: At,
}

pub fn check(cx: &Context<'_>) -> Verdict {
    let outages = outages(cx.events);
    let excuses = excuses(cx, &outages);
    let mut failures = Vec::new();
    let mut lost_in_window: BTreeMap<(InstanceKey, usize), bool> = BTreeMap::new();
    losses(cx, &excuses, &mut failures, &mut lost_in_window);
    lists(cx, &excuses, &mut failures, &mut lost_in_window);
    recovery(cx, &mut failures);
    deadlines(cx, &mut failures);
    let window = excuses
        .iter()
        .map(|((key, presence), e)| WindowWrite {
            key: key.clone(),
            member: e.outage.member,
            killed: e.outage.killed,
            before_ms: e.outage.from.ms_after(cx.records[e.cause].end),
            lost: lost_in_window
                .get(&(key.clone(), *presence))
                .copied()
                .unwrap_or(false),
        })
        .collect();
    failures.sort_by_key(|f| (f.check, f.at));
    Verdict { failures, window }
}

/// Kills of one member, and cuts until the member noticed (or was healed).
fn outages(events: &[Event]) -> Vec<Outage> {
    let mut outages = Vec::new();
    for (i, event) in events.iter().enumerate() {
        match event.fault {
            Fault::Kill(member) => outages.push(Outage {
                member,
                from: event.at,
                noticed: event.at,
                killed: true,
            }),
            Fault::Isolate(member) => {
                let noticed = events[i..]
                    .iter()
                    .find(|e| matches!(e.fault, Fault::NoticedCut(m) | Fault::Heal(m) if m == member))
                    .map_or(At::NEVER, |e| e.at);
                outages.push(Outage {
                    member,
                    from: event.at,
                    noticed,
                    killed: false,
                });
            }
            _ => {}
        }
    }
    outages
}

/// A presence whose registration falls in the AP window of an outage.
struct Excuse {
    outage: Outage,
    cause: usize,
    /// Misses of lists starting in `from..until` are the window's, not failures.
    until: At,
}

/// For every presence started by an acknowledgement from the service's
/// responsible member itself, at most [`AP_WINDOW_MS`] before that member
/// was killed (or after it was cut off, before it noticed): the excuse.
fn excuses(cx: &Context<'_>, outages: &[Outage]) -> BTreeMap<(InstanceKey, usize), Excuse> {
    let mut excuses = BTreeMap::new();
    for (key, timeline) in cx.timelines {
        if timeline.persistent {
            continue;
        }
        for (index, presence) in timeline.present.iter().enumerate() {
            let cause = &cx.records[presence.span.cause];
            if cx.owners.get(&key.service) != Some(&cause.member) {
                continue;
            }
            let outage = outages.iter().find(|o| {
                o.member == cause.member
                    && cause.end <= o.noticed
                    && o.from.ms_after(cause.end) <= AP_WINDOW_MS as f64
            });
            if let Some(outage) = outage {
                let until = presence
                    .next_alive_after(outage.from)
                    .map_or(At::NEVER, |end| end.plus_ms(LISTED_WITHIN_MS));
                excuses.insert(
                    (key.clone(), index),
                    Excuse {
                        outage: outage.clone(),
                        cause: presence.span.cause,
                        until,
                    },
                );
            }
        }
    }
    excuses
}

/// Check 1 during the run: a light beat answered 20404 for an instance that
/// was registered, acknowledged, and kept alive.
fn losses(
    cx: &Context<'_>,
    excuses: &BTreeMap<(InstanceKey, usize), Excuse>,
    failures: &mut Vec<Failure>,
    lost_in_window: &mut BTreeMap<(InstanceKey, usize), bool>,
) {
    for (key, timeline) in cx.timelines {
        for &(record, presence) in &timeline.losses {
            let beat = &cx.records[record];
            if let Some(excuse) = excuses.get(&(key.clone(), presence))
                && beat.start >= excuse.outage.from
            {
                lost_in_window.insert((key.clone(), presence), true);
                continue;
            }
            let p = &timeline.present[presence];
            failures.push(Failure {
                check: Check::Lost,
                key: Some(key.clone()),
                member: Some(beat.member),
                at: beat.start,
                what: format!(
                    "{beat}; registered by: {}; last proof of life before: {}",
                    cx.records[p.span.cause],
                    last_alive(p, beat.start, timeline.persistent)
                ),
            });
        }
    }
}

fn last_alive(p: &Presence, before: At, persistent: bool) -> String {
    if persistent {
        return "(persistent: needs none)".into();
    }
    p.alive
        .iter()
        .rev()
        .find(|(_, end)| *end <= before)
        .map_or("none".into(), |(start, _)| start.to_string())
}

/// Checks 2, 3 and 5 on every list answered during the run.
fn lists(
    cx: &Context<'_>,
    excuses: &BTreeMap<(InstanceKey, usize), Excuse>,
    failures: &mut Vec<Failure>,
    lost_in_window: &mut BTreeMap<(InstanceKey, usize), bool>,
) {
    let mut by_service: BTreeMap<&str, Vec<(&InstanceKey, &Timeline)>> = BTreeMap::new();
    for (key, timeline) in cx.timelines {
        by_service.entry(&key.service).or_default().push((key, timeline));
    }
    for list in cx.records {
        let Op::List {
            service,
            final_round,
        } = &list.op
        else {
            continue;
        };
        let (ports, strangers) = match &list.answer {
            Answer::Listed { ports, strangers } => (ports, strangers),
            other => {
                if let Some(what) = bad_list_answer(cx, list, other) {
                    failures.push(Failure {
                        check: Check::Missing,
                        key: None,
                        member: Some(list.member),
                        at: list.start,
                        what,
                    });
                }
                continue;
            }
        };
        for stranger in strangers {
            failures.push(phantom(list, format!("{service} {stranger}")));
        }
        let instances = by_service.get(&**service).map_or(&[][..], Vec::as_slice);
        for port in ports {
            let written = instances
                .iter()
                .find(|(k, _)| k.port == *port)
                .is_some_and(|(_, t)| t.attempts.iter().any(|a| *a < list.end));
            if !written {
                failures.push(phantom(list, format!("{service} 127.0.0.1:{port}")));
            }
        }
        for (key, timeline) in instances {
            let listed = ports.binary_search(&key.port).is_ok();
            if listed
                && let Some(gone) = timeline.absence_at(list.start.minus_ms(GONE_WITHIN_MS), list.end)
            {
                failures.push(Failure {
                    check: Check::Undone,
                    key: Some((*key).clone()),
                    member: Some(list.member),
                    at: list.start,
                    what: format!("{list} lists it; deregistered by: {}", cx.records[gone.cause]),
                });
            }
            if listed || *final_round {
                continue;
            }
            let Some((index, presence)) =
                timeline.presence_at(list.start.minus_ms(LISTED_WITHIN_MS), list.end)
            else {
                continue;
            };
            if !presence.alive_at(list.start, timeline.persistent) {
                continue;
            }
            if let Some(excuse) = excuses.get(&((*key).clone(), index))
                && list.start >= excuse.outage.from
                && list.start < excuse.until
            {
                lost_in_window.insert(((*key).clone(), index), true);
                continue;
            }
            failures.push(Failure {
                check: Check::Missing,
                key: Some((*key).clone()),
                member: Some(list.member),
                at: list.start,
                what: format!(
                    "{list} misses it; registered by: {}; last proof of life before: {}",
                    cx.records[presence.span.cause],
                    last_alive(presence, list.start, timeline.persistent)
                ),
            });
        }
    }
}

fn phantom(list: &Record, what: String) -> Failure {
    Failure {
        check: Check::Phantom,
        key: None,
        member: Some(list.member),
        at: list.start,
        what: format!("{list} lists {what}, which nobody registered before"),
    }
}

/// A list must be answered 200 by a ready member or 503 by one that is not.
fn bad_list_answer(cx: &Context<'_>, list: &Record, answer: &Answer) -> Option<String> {
    match answer {
        Answer::Status(503, _) | Answer::Refused => None,
        Answer::Broken(_) if killed_during(cx.events, list) => None,
        _ => Some(format!("{list}: a list must be answered 200 or 503")),
    }
}

/// Whether the member a request went to was down (killed, not yet
/// restarted) at some moment while the request was in flight, give or take
/// the moment the process takes to die.
fn killed_during(events: &[Event], r: &Record) -> bool {
    let mut down_since: Option<At> = None;
    for e in events {
        let (went_down, came_up) = match e.fault {
            Fault::Kill(m) => (m == r.member, false),
            Fault::KillAll => (true, false),
            Fault::Restart(m) => (false, m == r.member),
            Fault::RestartAll => (false, true),
            _ => (false, false),
        };
        if went_down {
            down_since = down_since.or(Some(e.at));
        }
        if came_up && let Some(since) = down_since.take() {
            if since <= r.end.plus_ms(50) && e.at >= r.start {
                return true;
            }
        }
    }
    down_since.is_some_and(|since| since <= r.end.plus_ms(50))
}

/// Check 1 after recovery (every acknowledged, live registration on every
/// member's last list) and check 2 after recovery (no deregistered instance).
fn recovery(cx: &Context<'_>, failures: &mut Vec<Failure>) {
    let mut last: BTreeMap<(usize, &str), &Record> = BTreeMap::new();
    for r in cx.records {
        if let Op::List {
            service,
            final_round: true,
        } = &r.op
        {
            last.insert((r.member, service), r);
        }
    }
    for (key, timeline) in cx.timelines {
        let Some(presence) = timeline.present_at_end(cx.stopped) else {
            continue;
        };
        let members: Vec<usize> = last
            .keys()
            .filter(|(_, s)| *s == &*key.service)
            .map(|(m, _)| *m)
            .collect();
        for member in members {
            let list = last[&(member, &*key.service)];
            let listed = matches!(&list.answer, Answer::Listed { ports, .. } if ports.binary_search(&key.port).is_ok());
            if !listed {
                failures.push(Failure {
                    check: Check::Lost,
                    key: Some(key.clone()),
                    member: Some(member),
                    at: list.start,
                    what: format!(
                        "missing after recovery: the last {list}; registered by: {}",
                        cx.records[presence.span.cause]
                    ),
                });
            }
        }
    }
}

/// Check 4: every write answered, and within its deadline.
fn deadlines(cx: &Context<'_>, failures: &mut Vec<Failure>) {
    for r in cx.records.iter().filter(|r| r.op.is_write()) {
        let bound = if r.op.persistent() {
            RAFT_WRITE_TIMEOUT_MS + SLACK_MS
        } else {
            REQUEST_TIMEOUT_MS + SLACK_MS
        };
        let what = match &r.answer {
            Answer::TimedOut => format!("{r}: no answer within {CLIENT_TIMEOUT_MS} ms"),
            Answer::Broken(_) if !killed_during(cx.events, r) => {
                format!("{r}: the connection broke, and the member was not killed")
            }
            Answer::Refused | Answer::Broken(_) => continue,
            _ if r.latency_ms() > bound as f64 => {
                format!("{r}: answered after {:.0} ms (bound {bound} ms)", r.latency_ms())
            }
            _ => continue,
        };
        failures.push(Failure {
            check: Check::Late,
            key: r.op.instance().cloned(),
            member: Some(r.member),
            at: r.start,
            what,
        });
    }
}
