//! What the history says each instance should be, and when: from the
//! sequence of one instance's own requests (each instance has exactly one
//! client, which waits for every answer, so they never overlap) the model
//! derives the spans in which the instance must be listed and the spans in
//! which it must not be, and the beats that found an acknowledged instance
//! gone.
//!
//! - An acknowledged registration (or a beat answered 10200) starts a
//!   *presence*; a deregistration attempt ends it. An ephemeral presence
//!   also ends when every member was killed at once (memory is all Distro
//!   has), and a light beat answered 20404 ends it as a *loss*.
//! - An acknowledged deregistration starts an *absence*; any registration
//!   attempt (or beat with a body, which registers) ends it.
//! - A write whose outcome is unknown (no answer; a 5xx that may have been
//!   applied) may take effect until [`LATE_EFFECT_MS`] after its answer: no
//!   presence or absence starts before then.
//! - Requests that certainly changed nothing (refused connections, 503s of a
//!   member that is not ready) are ignored.

use std::collections::BTreeMap;

use crate::history::{Answer, At, Event, Fault, InstanceKey, Op, Record};
use crate::settings::{BEAT_TIMEOUT_MS, LATE_EFFECT_MS};

/// A span in which an expectation holds, and the request that started it.
#[derive(Clone, Debug)]
pub struct Span {
    pub since: At,
    pub until: At,
    /// Index (in the history's records) of the request that started it.
    pub cause: usize,
}

/// An acknowledged register or beat: the instance was alive on the
/// member that answered, between `start` and `end`.
#[derive(Clone, Copy, Debug)]
pub struct Proof {
    pub start: At,
    pub end: At,
    pub member: usize,
}

impl Proof {
    fn of(r: &Record) -> Proof {
        Proof {
            start: r.start,
            end: r.end,
            member: r.member,
        }
    }
}

/// A span in which the instance is registered, with its proofs of life.
#[derive(Clone, Debug)]
pub struct Presence {
    pub span: Span,
    /// Every proof of life in it, by start.
    pub alive: Vec<Proof>,
}

impl Presence {
    /// Whether the client proved the instance alive (an answered beat or
    /// registration that ended by `at`) within the beat timeout before `at`:
    /// its responsible member cannot have expired it. Persistent instances
    /// need no beats.
    pub fn alive_at(&self, at: At, persistent: bool) -> bool {
        persistent
            || self
                .alive
                .iter()
                .rev()
                .find(|p| p.end <= at)
                .is_some_and(|p| at.ms_after(p.start) <= BEAT_TIMEOUT_MS as f64)
    }

    /// The end of the first proof of life that started at or after `at` and
    /// that `counts`.
    pub fn next_alive_after(&self, at: At, counts: impl Fn(&Proof) -> bool) -> Option<At> {
        self.alive
            .iter()
            .find(|p| p.start >= at && counts(p))
            .map(|p| p.end)
    }
}

/// Everything the model derives for one instance.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub persistent: bool,
    pub present: Vec<Presence>,
    pub absent: Vec<Span>,
    /// Light beats answered 20404 while the instance was present and alive:
    /// (record index, index into `present` of the presence it ended).
    pub losses: Vec<(usize, usize)>,
    /// Start of every registration attempt (or beat with a body), whatever
    /// its answer: what "somebody wrote it" means.
    pub attempts: Vec<At>,
}

impl Timeline {
    pub fn presence_at(&self, start: At, end: At) -> Option<(usize, &Presence)> {
        self.present
            .iter()
            .enumerate()
            .find(|(_, p)| p.span.since <= start && end <= p.span.until)
    }

    pub fn absence_at(&self, start: At, end: At) -> Option<(usize, &Span)> {
        self.absent
            .iter()
            .enumerate()
            .find(|(_, s)| s.since <= start && end <= s.until)
    }

    /// The presence every member must list after recovery, if any: still
    /// registered when the clients stopped at `stopped`, and (ephemeral)
    /// beating then, so no member may have expired it yet.
    pub fn present_at_end(&self, stopped: At) -> Option<&Presence> {
        self.present
            .last()
            .filter(|p| p.span.until == At::NEVER && p.alive_at(stopped, self.persistent))
    }

    /// Whether no member may list the instance after recovery: its last
    /// request was an acknowledged deregistration.
    pub fn absent_at_end(&self) -> bool {
        self.absent.last().is_some_and(|s| s.until == At::NEVER)
    }
}

/// Every member down at once: ephemeral data does not survive it.
#[derive(Clone, Copy)]
struct Wipe {
    from: At,
    until: At,
}

enum State {
    Nothing,
    Present(Presence),
    Absent(Span),
}

/// Builds every instance's timeline from the records (sorted by start) and
/// the nemesis's events.
pub fn timelines(records: &[Record], events: &[Event]) -> BTreeMap<InstanceKey, Timeline> {
    // Every member killed: from the first kill until all were started again,
    // whatever a member acknowledged dies with it.
    let mut wipes: Vec<Wipe> = Vec::new();
    for event in events {
        match event.fault {
            Fault::KillAll => wipes.push(Wipe {
                from: event.at,
                until: At::NEVER,
            }),
            Fault::RestartAll => {
                if let Some(wipe) = wipes.last_mut() {
                    wipe.until = event.at;
                }
            }
            _ => {}
        }
    }
    let mut by_instance: BTreeMap<InstanceKey, Vec<usize>> = BTreeMap::new();
    for (i, record) in records.iter().enumerate() {
        if let Some(key) = record.op.instance() {
            by_instance.entry(key.clone()).or_default().push(i);
        }
    }
    by_instance
        .into_iter()
        .map(|(key, indexes)| {
            let timeline = follow(records, &indexes, &wipes);
            (key, timeline)
        })
        .collect()
}

/// Runs one instance's requests through the rules above.
fn follow(records: &[Record], indexes: &[usize], wipes: &[Wipe]) -> Timeline {
    let persistent = indexes.first().is_some_and(|i| records[*i].op.persistent());
    let mut timeline = Timeline {
        persistent,
        ..Timeline::default()
    };
    let mut state = State::Nothing;
    let mut settled_from = At(0);
    let mut wipes = if persistent { &[][..] } else { wipes };
    for &i in indexes {
        let r = &records[i];
        if matches!(r.op, Op::Register { .. } | Op::Beat { body: true, .. }) {
            timeline.attempts.push(r.start);
        }
        // Every member was killed (and started again) before this request:
        // what they held is gone, including what they acknowledged while
        // the kills went on.
        while let Some((wipe, rest)) = wipes.split_first() {
            if wipe.until > r.start {
                break;
            }
            wipes = rest;
            state = match state {
                State::Present(p) => {
                    close_presence(&mut timeline, p, wipe.from);
                    State::Nothing
                }
                other => other,
            };
        }
        if r.answer.not_applied() {
            continue;
        }
        let uncertain = r.answer.uncertain();
        if uncertain {
            settled_from = settled_from.max(r.end.plus_ms(LATE_EFFECT_MS));
        }
        let acked = matches!(r.answer, Answer::Done | Answer::Beat(10200));
        state = match (&r.op, state) {
            (Op::Deregister { .. }, State::Present(p)) => {
                close_presence(&mut timeline, p, r.start);
                absence_after(r, i, acked, settled_from)
            }
            (Op::Deregister { .. }, State::Absent(span)) => State::Absent(span),
            (Op::Deregister { .. }, State::Nothing) => absence_after(r, i, acked, settled_from),
            (Op::Beat { body: false, .. }, State::Present(p))
                if matches!(r.answer, Answer::Beat(20404)) =>
            {
                let alive = p.alive_at(r.start, false);
                close_presence(&mut timeline, p, r.start);
                if alive {
                    let presence = timeline.present.len() - 1;
                    timeline.losses.push((i, presence));
                }
                State::Nothing
            }
            (Op::Beat { body: false, .. }, State::Absent(span)) => State::Absent(span),
            (_, State::Present(mut p)) => {
                if acked {
                    p.alive.push(Proof::of(r));
                }
                State::Present(p)
            }
            (_, State::Absent(span)) => {
                // A registration attempt: the absence ends where it started.
                timeline.absent.push(Span {
                    until: r.start,
                    ..span
                });
                presence_after(r, i, acked, settled_from)
            }
            (_, State::Nothing) => presence_after(r, i, acked, settled_from),
        };
    }
    match state {
        State::Present(p) => {
            // A wipe after the instance's last request ends it too.
            let until = wipes.first().map_or(At::NEVER, |w| w.from);
            close_presence(&mut timeline, p, until)
        }
        State::Absent(span) => timeline.absent.push(span),
        State::Nothing => {}
    }
    timeline
}

fn close_presence(timeline: &mut Timeline, mut presence: Presence, until: At) {
    presence.span.until = until;
    timeline.present.push(presence);
}

/// After a register or beat: present if it was acknowledged and nothing
/// uncertain can still undo it.
fn presence_after(r: &Record, i: usize, acked: bool, settled_from: At) -> State {
    if acked && r.start >= settled_from {
        State::Present(Presence {
            span: Span {
                since: r.end,
                until: At::NEVER,
                cause: i,
            },
            alive: vec![Proof::of(r)],
        })
    } else {
        State::Nothing
    }
}

fn absence_after(r: &Record, i: usize, acked: bool, settled_from: At) -> State {
    if acked {
        State::Absent(Span {
            since: r.end.max(settled_from),
            until: At::NEVER,
            cause: i,
        })
    } else {
        State::Nothing
    }
}
