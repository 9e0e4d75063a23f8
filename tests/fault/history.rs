//! The recorded history of one run: every client request (who sent it to
//! which member, what it asked, when it started and ended, what came back)
//! and every fault the nemesis injected, on one clock. The checker judges
//! nothing but this record.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};

/// Microseconds since the run started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct At(pub u64);

impl At {
    pub fn plus_ms(self, ms: u64) -> At {
        At(self.0.saturating_add(ms * 1_000))
    }

    pub fn minus_ms(self, ms: u64) -> At {
        At(self.0.saturating_sub(ms * 1_000))
    }

    /// `self - earlier`, in ms (negative when `earlier` is later).
    pub fn ms_after(self, earlier: At) -> f64 {
        (self.0 as f64 - earlier.0 as f64) / 1_000.0
    }

    pub const NEVER: At = At(u64::MAX);
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={:.1}ms", self.0 as f64 / 1_000.0)
    }
}

/// One instance, as the checker follows it: every instance is at 127.0.0.1
/// in cluster DEFAULT, so a service and a port name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey {
    pub service: Arc<str>,
    pub port: u16,
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} 127.0.0.1:{}", self.service, self.port)
    }
}

/// What a client asked.
#[derive(Clone, Debug)]
pub enum Op {
    Register {
        key: InstanceKey,
        ephemeral: bool,
    },
    Deregister {
        key: InstanceKey,
        ephemeral: bool,
    },
    /// `body`: a beat carrying the instance (which re-registers it when it is
    /// gone) rather than a light beat (answered 20404 then).
    Beat {
        key: InstanceKey,
        body: bool,
    },
    /// `final_round`: a list of the recovery check, after every client stopped.
    List {
        service: Arc<str>,
        final_round: bool,
    },
}

impl Op {
    pub fn instance(&self) -> Option<&InstanceKey> {
        match self {
            Op::Register { key, .. } | Op::Deregister { key, .. } | Op::Beat { key, .. } => {
                Some(key)
            }
            Op::List { .. } => None,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, Op::List { .. })
    }

    /// Whether the instance this touches is persistent (written through Raft).
    pub fn persistent(&self) -> bool {
        matches!(
            self,
            Op::Register {
                ephemeral: false,
                ..
            } | Op::Deregister {
                ephemeral: false,
                ..
            }
        )
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |e: &bool| if *e { "ephemeral" } else { "persistent" };
        match self {
            Op::Register { key, ephemeral } => write!(f, "register {} {key}", kind(ephemeral)),
            Op::Deregister { key, ephemeral } => {
                write!(f, "deregister {} {key}", kind(ephemeral))
            }
            Op::Beat { key, body: true } => write!(f, "beat (with body) {key}"),
            Op::Beat { key, body: false } => write!(f, "light beat {key}"),
            Op::List { service, .. } => write!(f, "list {service}"),
        }
    }
}

/// What came back.
#[derive(Clone, Debug)]
pub enum Answer {
    /// HTTP 200 to a register or deregister (body `ok`).
    Done,
    /// HTTP 200 to a beat, with the beat's code (10200, 20404).
    Beat(i64),
    /// HTTP 200 to a list: the ports of the hosts at 127.0.0.1, and any host
    /// elsewhere as `ip:port` (nobody registers one).
    Listed {
        ports: Vec<u16>,
        strangers: Vec<String>,
    },
    /// Any other HTTP answer.
    Status(u16, String),
    /// The connection was refused: the request never reached a node.
    Refused,
    /// The connection broke before an answer.
    Broken(String),
    /// No answer within the client's timeout.
    TimedOut,
}

impl Answer {
    /// The request certainly changed nothing: it never reached a node, or a
    /// node that was not ready refused it at the door.
    pub fn not_applied(&self) -> bool {
        match self {
            Answer::Refused => true,
            Answer::Status(503, body) => body.contains("please try again later"),
            Answer::Status(status, _) => (400..500).contains(status),
            _ => false,
        }
    }

    /// A write's outcome is unknown: it may have been applied, now or later.
    pub fn uncertain(&self) -> bool {
        !self.not_applied()
            && !matches!(self, Answer::Done | Answer::Beat(_) | Answer::Listed { .. })
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Done => write!(f, "200 ok"),
            Answer::Beat(code) => write!(f, "200 code {code}"),
            Answer::Listed { ports, strangers } => {
                write!(f, "200 with {} hosts", ports.len() + strangers.len())
            }
            Answer::Status(status, body) => {
                let body: String = body.chars().take(160).collect();
                write!(f, "{status} {body}")
            }
            Answer::Refused => write!(f, "connection refused"),
            Answer::Broken(e) => write!(f, "connection broken: {e}"),
            Answer::TimedOut => write!(f, "no answer (client timeout)"),
        }
    }
}

/// One request, from the client's side.
#[derive(Clone, Debug)]
pub struct Record {
    pub client: Arc<str>,
    pub member: usize,
    pub op: Op,
    pub start: At,
    pub end: At,
    pub answer: Answer,
}

impl Record {
    pub fn latency_ms(&self) -> f64 {
        self.end.ms_after(self.start)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {} via node {} [{} .. {:.1}ms] -> {}",
            self.op,
            self.client,
            self.member,
            self.start,
            self.end.0 as f64 / 1_000.0,
            self.answer
        )
    }
}

/// What the nemesis did, or saw the cluster do.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Kill(usize),
    Restart(usize),
    /// Every link to and from the member cut.
    Isolate(usize),
    /// The isolated member reported itself not ready.
    NoticedCut(usize),
    Heal(usize),
    /// kill -9 of every member: ephemeral data is gone with them.
    KillAll,
    RestartAll,
    /// Every running member ready, with the same view (and a Raft leader).
    Converged,
    /// Every member's Raft state machine applied what the leader had
    /// committed when the cluster converged.
    RaftCaughtUp,
    /// The test process itself did not run from `from` until this event
    /// (a loaded machine): its clients, and the proxies that carry every
    /// member link, stood still.
    Stalled {
        from: At,
    },
    /// A phase of the schedule, for the reader.
    Note(String),
}

#[derive(Clone, Debug)]
pub struct Event {
    pub at: At,
    pub fault: Fault,
}

/// The shared record of a run.
#[derive(Clone)]
pub struct History {
    started: Instant,
    /// Wall-clock time of `started`, to find a moment in the members' logs.
    pub wall_start: SystemTime,
    records: Arc<Mutex<Vec<Record>>>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl History {
    pub fn new() -> History {
        History {
            started: Instant::now(),
            wall_start: SystemTime::now(),
            records: Arc::default(),
            events: Arc::default(),
        }
    }

    pub fn now(&self) -> At {
        At(self.started.elapsed().as_micros() as u64)
    }

    pub fn record(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    pub fn event(&self, fault: Fault) -> At {
        let at = self.now();
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Event { at, fault });
        at
    }

    /// How many records satisfy `test` so far.
    pub fn count(&self, test: impl Fn(&Record) -> bool) -> usize {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| test(r))
            .count()
    }

    /// Every record, ordered by start; every event, in order.
    pub fn snapshot(&self) -> (Vec<Record>, Vec<Event>) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        records.sort_by_key(|r| (r.start, r.end));
        let events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (records, events)
    }
}

/// A wall-clock time as the members' logs print it (UTC, time of day).
pub fn utc_time_of_day(time: SystemTime) -> String {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1_000 % 60,
        day_ms % 1_000
    )
}

/// One record as a line of JSON, for the dump a failing seed leaves behind.
pub fn record_json(record: &Record) -> Value {
    let answer = match &record.answer {
        Answer::Listed { ports, strangers } => json!({ "listed": ports, "strangers": strangers }),
        other => json!(other.to_string()),
    };
    json!({
        "startMs": record.start.0 as f64 / 1_000.0,
        "endMs": record.end.0 as f64 / 1_000.0,
        "client": &*record.client,
        "member": record.member,
        "op": record.op.to_string(),
        "answer": answer,
    })
}

pub fn event_json(event: &Event) -> Value {
    json!({ "atMs": event.at.0 as f64 / 1_000.0, "event": format!("{:?}", event.fault) })
}
