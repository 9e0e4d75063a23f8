//! The checker: the five properties of the crate doc over the recorded
//! history, each failure naming the instance, the member, the request and
//! the times. Losses inside the AP window ([`crate::window`]) are measured
//! apart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::history::{Answer, At, Event, Fault, InstanceKey, Op, Record};
use crate::model::{Presence, Timeline};
use crate::settings::{
    CLIENT_TIMEOUT_MS, GONE_WITHIN_MS, LISTED_WITHIN_MS, RAFT_WRITE_TIMEOUT_MS, REQUEST_TIMEOUT_MS,
    SLACK_MS,
};
use crate::window::{self, Excuses, Expectation, WindowWrite};

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
            Check::Lost => "1 (acknowledged registration lost)",
            Check::Undone => "2 (acknowledged deregistration undone)",
            Check::Missing => "3 (live instance missing from a ready member's list)",
            Check::Late => "4 (write not answered within its deadline)",
            Check::Phantom => "5 (listed what nobody wrote)",
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
    /// When the clients were stopped (the recovery round follows).
    pub stopped: At,
}

/// Losses observed inside the window (the measurement's "lost").
type Lost = BTreeMap<(InstanceKey, Expectation), ()>;

pub fn check(cx: &Context<'_>) -> Verdict {
    let outages = window::outages(cx.events);
    let mut judge = Judge {
        cx,
        excuses: window::excuses(cx, &outages),
        failures: Vec::new(),
        lost: Lost::new(),
    };
    judge.beats();
    judge.lists();
    judge.recovery();
    judge.deadlines();
    let Judge {
        excuses,
        mut failures,
        lost,
        ..
    } = judge;
    failures.sort_by_key(|f| (f.check, f.at));
    Verdict {
        window: window::measure(cx, &excuses, &lost),
        failures,
    }
}

/// The checker's state while it reads the history.
struct Judge<'a> {
    cx: &'a Context<'a>,
    excuses: Excuses,
    failures: Vec<Failure>,
    lost: Lost,
}

impl Judge<'_> {
    /// Records that `expectation` of `key` did not hold in `seen` (a request
    /// answered by `seen.member`): a failure of `check`, unless it is a loss
    /// in the documented window (then only measured); a loss in a cut's
    /// window is measured and fails, labelled.
    fn broken(
        &mut self,
        check: Check,
        key: &InstanceKey,
        expectation: Expectation,
        seen: &Record,
        what: impl FnOnce() -> String,
    ) {
        let mut what = what();
        if let Some(excuse) = window::window(&self.excuses, key, expectation, seen.start) {
            self.lost.insert((key.clone(), expectation), ());
            if excuse.excuses() {
                return;
            }
            what = format!("{what}; {}", excuse.describe(self.cx.records));
        }
        self.failures.push(Failure {
            check,
            key: Some(key.clone()),
            member: Some(seen.member),
            at: seen.start,
            what,
        });
    }

    /// Check 1 during the run: a light beat answered 20404 for an instance
    /// that was registered, acknowledged, and kept alive.
    fn beats(&mut self) {
        let cx = self.cx;
        for (key, timeline) in cx.timelines {
            for &(record, presence) in &timeline.losses {
                let beat = &cx.records[record];
                let p = &timeline.present[presence];
                self.broken(
                    Check::Lost,
                    key,
                    Expectation::Present(presence),
                    beat,
                    || {
                        format!(
                            "{beat}; registered by: {}; last proof of life: {}",
                            cx.records[p.span.cause],
                            last_alive(p, beat.start, false)
                        )
                    },
                );
            }
        }
    }

    /// Checks 2, 3 and 5 on every list.
    fn lists(&mut self) {
        let cx = self.cx;
        let mut by_service: BTreeMap<&str, Vec<(&InstanceKey, &Timeline)>> = BTreeMap::new();
        for (key, timeline) in cx.timelines {
            by_service
                .entry(&key.service)
                .or_default()
                .push((key, timeline));
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
                        self.failures.push(Failure {
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
            let instances = by_service.get(&service[..]).map_or(&[][..], Vec::as_slice);
            self.phantoms(list, service, ports, strangers, instances);
            for (key, timeline) in instances {
                let listed = ports.binary_search(&key.port).is_ok();
                if listed {
                    self.undone(list, key, timeline);
                } else if !final_round {
                    self.missing(list, key, timeline);
                }
            }
        }
    }

    /// Check 5: every listed host was registered (attempted) by someone
    /// before the list ended.
    fn phantoms(
        &mut self,
        list: &Record,
        service: &str,
        ports: &[u16],
        strangers: &[String],
        instances: &[(&InstanceKey, &Timeline)],
    ) {
        let mut nobodys: Vec<String> = strangers.to_vec();
        for port in ports {
            let written = instances
                .iter()
                .find(|(k, _)| k.port == *port)
                .is_some_and(|(_, t)| t.attempts.iter().any(|a| *a < list.end));
            if !written {
                nobodys.push(format!("127.0.0.1:{port}"));
            }
        }
        for host in nobodys {
            self.failures.push(Failure {
                check: Check::Phantom,
                key: None,
                member: Some(list.member),
                at: list.start,
                what: format!("{list} lists {service} {host}, which nobody registered before"),
            });
        }
    }

    /// Check 2: a listed instance must not be in an absence that began
    /// [`GONE_WITHIN_MS`] before the list.
    fn undone(&mut self, list: &Record, key: &InstanceKey, timeline: &Timeline) {
        let since = list.start.minus_ms(GONE_WITHIN_MS);
        let Some((index, gone)) = timeline.absence_at(since, list.end) else {
            return;
        };
        let cause = &self.cx.records[gone.cause];
        self.broken(Check::Undone, key, Expectation::Absent(index), list, || {
            format!("{list} lists it; deregistered by: {cause}")
        });
    }

    /// Check 3: a live instance, acknowledged [`LISTED_WITHIN_MS`] before
    /// the list, must be in it.
    fn missing(&mut self, list: &Record, key: &InstanceKey, timeline: &Timeline) {
        let since = list.start.minus_ms(LISTED_WITHIN_MS);
        let Some((index, presence)) = timeline.presence_at(since, list.end) else {
            return;
        };
        if !presence.alive_at(list.start, timeline.persistent) {
            return;
        }
        let cause = &self.cx.records[presence.span.cause];
        self.broken(
            Check::Missing,
            key,
            Expectation::Present(index),
            list,
            || {
                format!(
                    "{list} misses it; registered by: {cause}; last proof of life: {}",
                    last_alive(presence, list.start, timeline.persistent)
                )
            },
        );
    }
}

fn last_alive(p: &Presence, before: At, persistent: bool) -> String {
    if persistent {
        return "(persistent: needs none)".into();
    }
    p.alive
        .iter()
        .rev()
        .find(|p| p.end <= before)
        .map_or("none".into(), |p| {
            format!("{} via node {}", p.start, p.member)
        })
}

/// A list must be answered 200 by a ready member or 503 by one that is not.
fn bad_list_answer(cx: &Context<'_>, list: &Record, answer: &Answer) -> Option<String> {
    match answer {
        Answer::Status(503, _) | Answer::Refused => None,
        Answer::Broken(_) if killed_during(cx.events, list) => None,
        Answer::TimedOut if stalled_during(cx.events, list) => None,
        _ => Some(format!("{list}: a list must be answered 200 or 503")),
    }
}

/// Whether the test process stalled while the request was in flight: its
/// time is then the harness's, not the node's.
pub fn stalled_during(events: &[Event], r: &Record) -> bool {
    events.iter().any(|e| match e.fault {
        Fault::Stalled { from } => from < r.end && e.at > r.start,
        _ => false,
    })
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
        if came_up
            && let Some(since) = down_since.take()
            && since <= r.end.plus_ms(50)
            && e.at >= r.start
        {
            return true;
        }
    }
    down_since.is_some_and(|since| since <= r.end.plus_ms(50))
}

impl Judge<'_> {
    /// Check 1 after recovery: every member's last list of the recovery round
    /// holds every instance still registered (and, if ephemeral, beating) when
    /// the clients stopped. (Check 2 judges the same lists in [`lists`].)
    fn recovery(&mut self) {
        let cx = self.cx;
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
            for ((member, _), list) in last.iter().filter(|((_, s), _)| *s == &*key.service) {
                let listed = matches!(&list.answer, Answer::Listed { ports, .. } if ports.binary_search(&key.port).is_ok());
                if !listed {
                    self.failures.push(Failure {
                        check: Check::Lost,
                        key: Some(key.clone()),
                        member: Some(*member),
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
    fn deadlines(&mut self) {
        let cx = self.cx;
        for r in cx.records.iter().filter(|r| r.op.is_write()) {
            if stalled_during(cx.events, r) {
                continue;
            }
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
                    format!(
                        "{r}: answered after {:.0} ms (bound {bound} ms)",
                        r.latency_ms()
                    )
                }
                _ => continue,
            };
            self.failures.push(Failure {
                check: Check::Late,
                key: r.op.instance().cloned(),
                member: Some(r.member),
                at: r.start,
                what,
            });
        }
    }
}
