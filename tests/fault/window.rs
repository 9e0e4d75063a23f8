//! The window an AP registry cannot close, measured rather than failed: a
//! write acknowledged by a member that answered from its own registry, just
//! before that member was killed — or after it was cut off and before it
//! noticed — may exist nowhere else, because its sync never left.
//!
//! - A kill: the write was acknowledged by the killed member, which was the
//!   service's responsible member (all members are up and agree before the
//!   nemesis kills), at most [`AP_WINDOW_MS`] before the kill.
//! - A cut: the write was acknowledged by the cut-off member between
//!   [`AP_WINDOW_MS`] before the cut and the moment it reported itself not
//!   ready. Its view shrinks as its forwards fail, so in that window it may
//!   answer for services it is not responsible for in the full view: no
//!   owner condition.
//!
//! A presence (or absence) started by such a write is *excused*: a beat that
//! finds the instance gone, or a list that misses it (shows it), from the
//! outage on until the client proved it alive again (registered it again),
//! counts as the window's loss, not as a failure.

use std::collections::BTreeMap;

use crate::checker::Context;
use crate::history::{At, Event, Fault, InstanceKey, Record};
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
                let until = presence
                    .next_alive_after(outage.from)
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

/// Whether an observation at `at` of `expectation` failing is the window's.
pub fn excused(excuses: &Excuses, key: &InstanceKey, expectation: Expectation, at: At) -> bool {
    excuses
        .get(&(key.clone(), expectation))
        .is_some_and(|e| at >= e.outage.from && at < e.until)
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
