//! The window an AP registry cannot close: a write acknowledged by a member
//! that answered from its own registry may exist nowhere else until its sync
//! leaves. Two kinds of write are in a window:
//!
//! - kill: acknowledged by the member that was killed, which was the
//!   service's responsible member (all members are up and agree before the
//!   nemesis kills), at most [`AP_WINDOW_MS`] before the kill. Its loss is
//!   the documented window (docs/CLUSTER.md): measured, not a failure;
//! - cut: acknowledged by a member between [`AP_WINDOW_MS`] before it was
//!   cut off and the moment it reported itself not ready. Its sync could not
//!   leave either (and its view shrinks as its forwards fail, so it may
//!   answer for services it is not responsible for in the full view: no
//!   owner condition). Nothing documents this window, so its losses *are*
//!   failures; the checker labels them, so they are told apart from the rest.
//!
//! A beat that finds such an instance gone, or a list that misses it (or,
//! for a deregistration, shows it), from the outage on until the client
//! proved it alive again, is the window's loss.

use std::collections::BTreeMap;

use crate::checker::Context;
use crate::history::{At, Event, Fault, InstanceKey, Record};
use crate::model::Proof;
use crate::settings::{AP_WINDOW_MS, LISTED_WITHIN_MS};

/// A member out of reach: killed, or cut off until it noticed.
#[derive(Clone, Debug)]
pub struct Outage {
    pub member: usize,
    pub from: At,
    /// Until when the member could still acknowledge writes it could not sync.
    pub noticed: At,
    pub killed: bool,
}

/// Which expectation of an instance an excuse covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expectation {
    /// An index into the timeline's `present`.
    Present(usize),
    /// An index into the timeline's `absent`.
    Absent(usize),
}

pub struct Excuse {
    pub outage: Outage,
    pub cause: usize,
    /// Misses of lists starting in `outage.from..until` are the window's.
    pub until: At,
}

pub type Excuses = BTreeMap<(InstanceKey, Expectation), Excuse>;

/// One write acknowledged inside the window, and whether it was lost.
#[derive(Clone, Debug)]
pub struct WindowWrite {
    pub key: InstanceKey,
    pub registration: bool,
    pub member: usize,
    pub killed: bool,
    /// Outage start minus acknowledgement, ms (negative: after the cut).
    pub before_ms: f64,
    pub lost: bool,
}

/// Kills of one member, and cuts until the member noticed (or was healed).
pub fn outages(events: &[Event]) -> Vec<Outage> {
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
                    .find(
                        |e| matches!(e.fault, Fault::NoticedCut(m) | Fault::Heal(m) if m == member),
                    )
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

/// The outage whose window `cause` (an acknowledged ephemeral write) fell in.
fn window_of<'a>(
    cx: &Context<'_>,
    outages: &'a [Outage],
    key: &InstanceKey,
    cause: &Record,
) -> Option<&'a Outage> {
    outages.iter().find(|o| {
        o.member == cause.member
            && cause.end <= o.noticed
            && o.from.ms_after(cause.end) <= AP_WINDOW_MS as f64
            && (!o.killed || cx.owners.get(&key.service) == Some(&cause.member))
    })
}

/// Every ephemeral expectation started by a write in the window.
pub fn excuses(cx: &Context<'_>, outages: &[Outage]) -> Excuses {
    let mut excuses = BTreeMap::new();
    for (key, timeline) in cx.timelines.iter().filter(|(_, t)| !t.persistent) {
        for (index, presence) in timeline.present.iter().enumerate() {
            let cause = &cx.records[presence.span.cause];
            if let Some(outage) = window_of(cx, outages, key, cause) {
                // What the member out of reach answered before it noticed
                // proves nothing to the others.
                let proves = |p: &Proof| p.member != outage.member || p.start >= outage.noticed;
                let until = presence
                    .next_alive_after(outage.from, proves)
                    .map_or(At::NEVER, |end| end.plus_ms(LISTED_WITHIN_MS));
                let excuse = Excuse {
                    outage: outage.clone(),
                    cause: presence.span.cause,
                    until,
                };
                excuses.insert((key.clone(), Expectation::Present(index)), excuse);
            }
        }
        for (index, absence) in timeline.absent.iter().enumerate() {
            let cause = &cx.records[absence.cause];
            if let Some(outage) = window_of(cx, outages, key, cause) {
                let excuse = Excuse {
                    outage: outage.clone(),
                    cause: absence.cause,
                    until: At::NEVER,
                };
                excuses.insert((key.clone(), Expectation::Absent(index)), excuse);
            }
        }
    }
    excuses
}

/// The window an observation at `at` of `expectation` failing falls in, if any.
pub fn window<'a>(
    excuses: &'a Excuses,
    key: &InstanceKey,
    expectation: Expectation,
    at: At,
) -> Option<&'a Excuse> {
    excuses
        .get(&(key.clone(), expectation))
        .filter(|e| at >= e.outage.from && at < e.until)
}

impl Excuse {
    /// Whether a loss in this window is the documented one (a kill).
    pub fn excuses(&self) -> bool {
        self.outage.killed
    }

    /// How the write stands to its window, for a failure's text.
    pub fn describe(&self, records: &[Record]) -> String {
        let after = records[self.cause].end.ms_after(self.outage.from);
        format!(
            "it was acknowledged by node {} itself {after:.1} ms after node {} was cut off, \
             before it noticed (its sync could not leave)",
            self.outage.member, self.outage.member
        )
    }
}

/// The measurement: every write in the window, and whether it was lost.
pub fn measure(
    cx: &Context<'_>,
    excuses: &Excuses,
    lost: &BTreeMap<(InstanceKey, Expectation), ()>,
) -> Vec<WindowWrite> {
    excuses
        .iter()
        .map(|((key, expectation), e)| WindowWrite {
            key: key.clone(),
            registration: matches!(expectation, Expectation::Present(_)),
            member: e.outage.member,
            killed: e.outage.killed,
            before_ms: e.outage.from.ms_after(cx.records[e.cause].end),
            lost: lost.contains_key(&(key.clone(), *expectation)),
        })
        .collect()
}
