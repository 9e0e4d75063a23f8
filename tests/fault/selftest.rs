//! The checker against made-up histories: each property fails when its rule
//! is broken and holds when the history only looks suspicious (a list too
//! soon after the write, an instance that stopped beating, every member
//! killed at once, a write inside the AP window). A checker that cannot fail
//! would prove nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::checker::{Check, Context, Verdict, check};
use crate::history::{Answer, At, Event, Fault, InstanceKey, Op, Record};
use crate::model::timelines;

const SERVICE: &str = "svc";

fn key(port: u16) -> InstanceKey {
    InstanceKey {
        service: Arc::from(SERVICE),
        port,
    }
}

fn ms(ms: u64) -> At {
    At(ms * 1_000)
}

/// A history under construction: requests of instance 1 (and others), events.
#[derive(Default)]
struct Story {
    records: Vec<Record>,
    events: Vec<Event>,
}

impl Story {
    fn add(
        &mut self,
        member: usize,
        op: Op,
        (start, end): (u64, u64),
        answer: Answer,
    ) -> &mut Self {
        self.records.push(Record {
            client: Arc::from("c"),
            member,
            op,
            start: ms(start),
            end: ms(end),
            answer,
        });
        self
    }

    fn register(&mut self, port: u16, member: usize, at: u64) -> &mut Self {
        let op = Op::Register {
            key: key(port),
            ephemeral: true,
        };
        self.add(member, op, (at, at + 2), Answer::Done)
    }

    fn deregister(&mut self, port: u16, member: usize, at: u64, answer: Answer) -> &mut Self {
        let op = Op::Deregister {
            key: key(port),
            ephemeral: true,
        };
        self.add(member, op, (at, at + 2), answer)
    }

    /// Light beats answered 10200 every 500 ms in `from..to`.
    fn beats(&mut self, port: u16, from: u64, to: u64) -> &mut Self {
        for at in (from..to).step_by(500) {
            let op = Op::Beat {
                key: key(port),
                body: false,
            };
            self.add(1, op, (at, at + 1), Answer::Beat(10200));
        }
        self
    }

    fn list(&mut self, member: usize, at: u64, ports: &[u16], final_round: bool) -> &mut Self {
        let op = Op::List {
            service: Arc::from(SERVICE),
            final_round,
        };
        let answer = Answer::Listed {
            ports: ports.to_vec(),
            strangers: Vec::new(),
        };
        self.add(member, op, (at, at + 1), answer)
    }

    fn event(&mut self, at: u64, fault: Fault) -> &mut Self {
        self.events.push(Event { at: ms(at), fault });
        self
    }

    fn verdict(&mut self, stopped: u64) -> Verdict {
        self.records.sort_by_key(|r| (r.start, r.end));
        let timelines = timelines(&self.records, &self.events);
        // Member 0 is responsible for the service.
        let owners = BTreeMap::from([(Arc::from(SERVICE), 0)]);
        check(&Context {
            records: &self.records,
            events: &self.events,
            timelines: &timelines,
            owners: &owners,
            stopped: ms(stopped),
        })
    }
}

fn checks(verdict: &Verdict) -> Vec<(Check, Option<usize>)> {
    verdict
        .failures
        .iter()
        .map(|f| (f.check, f.member))
        .collect()
}

#[test]
fn a_clean_history_passes() {
    let v = Story::default()
        .register(1, 2, 0)
        .beats(1, 500, 6_000)
        .list(0, 100, &[], false) // before the sync bound: may miss it
        .list(1, 2_000, &[1], false)
        .list(0, 6_100, &[1], true)
        .verdict(6_000);
    assert_eq!(checks(&v), []);
}

#[test]
fn a_live_instance_missing_from_a_list_fails_check_3() {
    let v = Story::default()
        .register(1, 0, 0)
        .beats(1, 500, 4_000)
        .list(1, 3_000, &[], false)
        .verdict(4_000);
    assert_eq!(checks(&v), [(Check::Missing, Some(1))]);
}

#[test]
fn an_instance_that_stopped_beating_may_be_missing() {
    let v = Story::default()
        .register(1, 0, 0)
        .beats(1, 500, 1_000)
        .list(1, 5_000, &[], false)
        .verdict(6_000);
    assert_eq!(checks(&v), []);
}

#[test]
fn a_beat_finding_a_registered_instance_gone_fails_check_1_unless_all_members_died() {
    let mut story = Story::default();
    story.register(1, 0, 0).beats(1, 500, 2_000);
    let op = Op::Beat {
        key: key(1),
        body: false,
    };
    story.add(2, op.clone(), (2_000, 2_001), Answer::Beat(20404));
    assert_eq!(checks(&story.verdict(3_000)), [(Check::Lost, Some(2))]);

    let mut story = Story::default();
    story.register(1, 0, 0).beats(1, 500, 1_800);
    story
        .event(1_850, Fault::KillAll)
        .event(1_950, Fault::RestartAll);
    story.add(2, op, (2_000, 2_001), Answer::Beat(20404));
    assert_eq!(checks(&story.verdict(3_000)), []);
}

#[test]
fn a_deregistered_instance_listed_again_fails_check_2() {
    let v = Story::default()
        .register(1, 0, 0)
        .beats(1, 500, 1_000)
        .deregister(1, 1, 1_000, Answer::Done)
        .list(2, 2_000, &[1], false) // within the propagation bound
        .list(2, 3_000, &[1], false)
        .verdict(4_000);
    assert_eq!(checks(&v), [(Check::Undone, Some(2))]);
}

#[test]
fn an_uncertain_deregistration_suspends_judgement() {
    // The deregistration got no answer: it may land after the next registration.
    let v = Story::default()
        .register(1, 0, 0)
        .deregister(1, 1, 500, Answer::Status(503, "owner failed".into()))
        .register(1, 2, 700)
        .beats(1, 1_000, 4_000)
        .list(1, 2_500, &[], false)
        .verdict(4_000);
    assert_eq!(checks(&v), []);
}

#[test]
fn slow_unanswered_or_broken_writes_fail_check_4() {
    let mut story = Story::default();
    let persistent = Op::Register {
        key: key(7),
        ephemeral: false,
    };
    story.add(0, persistent.clone(), (0, 3_000), Answer::Done);
    story.add(1, persistent.clone(), (3_000, 8_000), Answer::TimedOut);
    story.add(
        2,
        persistent.clone(),
        (8_000, 8_010),
        Answer::Broken("reset".into()),
    );
    // Broken because the member was being killed: not the node's fault.
    story.add(
        0,
        persistent,
        (9_000, 9_010),
        Answer::Broken("reset".into()),
    );
    story.event(9_005, Fault::Kill(0));
    let failures = checks(&story.verdict(10_000));
    assert_eq!(
        failures,
        [
            (Check::Late, Some(0)),
            (Check::Late, Some(1)),
            (Check::Late, Some(2))
        ]
    );
}

#[test]
fn no_time_is_judged_across_a_stall_of_the_test_process() {
    let mut story = Story::default();
    let persistent = Op::Register {
        key: key(7),
        ephemeral: false,
    };
    story.add(0, persistent.clone(), (0, 5_000), Answer::TimedOut);
    story.event(4_000, Fault::Stalled { from: ms(1_000) });
    story.add(0, persistent, (6_000, 9_000), Answer::Done);
    assert_eq!(checks(&story.verdict(10_000)), [(Check::Late, Some(0))]);
}

#[test]
fn a_host_nobody_registered_fails_check_5() {
    let v = Story::default().list(1, 100, &[9], false).verdict(1_000);
    assert_eq!(checks(&v), [(Check::Phantom, Some(1))]);
}

/// Instance 1 registered through `acked_by` at 1000 ms, beating; `acked_by`
/// killed at `killed_at`; member 1 lists the service without it at 3000 ms.
fn killed_after_registering(acked_by: usize, killed_at: u64) -> Verdict {
    Story::default()
        .register(1, acked_by, 1_000)
        .beats(1, 1_500, 4_000)
        .event(killed_at, Fault::Kill(acked_by))
        .list(1, 3_000, &[], false)
        .verdict(4_000)
}

#[test]
fn a_write_lost_in_the_ap_window_is_measured_not_failed() {
    // Acknowledged by the owner (member 0) 48 ms before it was killed.
    let v = killed_after_registering(0, 1_050);
    assert_eq!(checks(&v), []);
    assert_eq!(v.window.len(), 1);
    assert!(v.window[0].lost && v.window[0].killed);
    // 198 ms before the kill: outside the window, a failure.
    let v = killed_after_registering(0, 1_200);
    assert_eq!(checks(&v), [(Check::Missing, Some(1))]);
    // Acknowledged by a member that is not the owner: it forwarded, so the
    // owner had it; losing it is a failure.
    let v = killed_after_registering(2, 1_050);
    assert_eq!(checks(&v), [(Check::Missing, Some(1))]);
}

#[test]
fn a_write_lost_in_a_cut_window_is_measured_and_fails() {
    // Acknowledged by member 2 after it was cut off, before it noticed.
    let v = Story::default()
        .event(900, Fault::Isolate(2))
        .event(1_200, Fault::NoticedCut(2))
        .register(1, 2, 1_000)
        .beats(1, 1_500, 4_000)
        .list(1, 3_000, &[], false)
        .verdict(4_000);
    assert_eq!(checks(&v), [(Check::Missing, Some(1))]);
    assert!(
        v.failures[0].what.contains("cut off, before it noticed"),
        "{}",
        v.failures[0].what
    );
    assert!(v.window.len() == 1 && v.window[0].lost && !v.window[0].killed);
}

#[test]
fn an_instance_missing_after_recovery_fails_check_1() {
    let v = Story::default()
        .register(1, 0, 0)
        .beats(1, 500, 3_000)
        .list(2, 3_100, &[], true)
        .verdict(3_000);
    assert_eq!(checks(&v), [(Check::Lost, Some(2))]);
}
