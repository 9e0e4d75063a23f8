//! The load: clients that behave like Nacos 1.x clients, each bounded in
//! count and stopped by one signal. Ephemeral clients register one instance
//! and beat it (light beats, beats with a body, or the Java client's mix),
//! now and then deregister and register again, re-register when a beat
//! answers 20404, and a few go silent for good. Persistent writers register
//! and deregister instances at loopback ports the suite listens on (the
//! responsible member probes them). Listers list random services through
//! random members. Every client talks to random members and, like a Nacos
//! client walking its server list, tries another member when one fails.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::api::{Api, Change};
use crate::history::{Answer, InstanceKey};
use crate::rng::Rng;
use crate::settings::BEAT_PERIOD_MS;

/// Most requests one client sends (a bound, far above what a run needs).
const MAX_OPS: usize = 2_000;
/// Members one logical request is tried on before the client waits.
const TRIES: usize = 3;

/// How an ephemeral client beats.
#[derive(Clone, Copy, Debug)]
pub enum BeatStyle {
    Light,
    Body,
    /// The Java client: a body on the first beat after registering, light after.
    Java,
}

/// How an ephemeral client starts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Start {
    /// The member its first registration goes to (the owner, in a burst);
    /// otherwise, and afterwards, members are picked at random.
    pub first_via: Option<usize>,
    /// How long after being spawned it sends its first request.
    pub delay_ms: u64,
}

pub struct Load {
    api: Api,
    rng: Rng,
    stop_tx: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
    tasks: JoinSet<()>,
    next_port: u16,
    next_client: u64,
    /// Every service listers pick from; bursts add theirs.
    services: Arc<Mutex<Vec<Arc<str>>>>,
    listeners: JoinSet<()>,
}

impl Load {
    pub fn new(api: Api, rng: Rng) -> Load {
        let (stop_tx, stop) = watch::channel(false);
        Load {
            api,
            rng,
            stop_tx,
            stop,
            tasks: JoinSet::new(),
            next_port: 20_000,
            next_client: 0,
            services: Arc::default(),
            listeners: JoinSet::new(),
        }
    }

    /// A new client: its name (`c<n>`, as the history shows it) and its
    /// own random choices.
    fn client(&mut self) -> Client {
        self.next_client += 1;
        let n = self.next_client;
        Client {
            api: self.api.clone(),
            name: Arc::from(format!("c{n}")),
            rng: self.rng.fork(n),
            stop: self.stop.clone(),
        }
    }

    pub fn add_service(&self, service: &Arc<str>) {
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if !services.contains(service) {
            services.push(Arc::clone(service));
        }
    }

    /// Starts one ephemeral client for a new instance of `service`.
    pub fn ephemeral(
        &mut self,
        service: &Arc<str>,
        style: BeatStyle,
        start: Start,
        may_go_silent: bool,
    ) {
        self.add_service(service);
        self.next_port += 1;
        let key = InstanceKey {
            service: Arc::clone(service),
            port: self.next_port,
        };
        let client = self.client();
        self.tasks
            .spawn(ephemeral_client(client, key, style, start, may_go_silent));
    }

    /// Starts a persistent writer owning `ports` in each of `services`.
    pub fn persistent(&mut self, services: &[Arc<str>], ports: &[u16]) {
        for service in services {
            self.add_service(service);
        }
        let keys: Vec<InstanceKey> = services
            .iter()
            .flat_map(|s| {
                ports.iter().map(|p| InstanceKey {
                    service: Arc::clone(s),
                    port: *p,
                })
            })
            .collect();
        let client = self.client();
        self.tasks.spawn(persistent_writer(client, keys));
    }

    /// Starts a client listing random services through random members.
    pub fn lister(&mut self) {
        let client = self.client();
        self.tasks.spawn(lister(client, Arc::clone(&self.services)));
    }

    /// Binds `count` loopback listeners that accept and close connections:
    /// the ports persistent instances are registered at, so the responsible
    /// member's TCP probe finds them healthy.
    pub async fn listen(&mut self, count: usize) -> anyhow::Result<Vec<u16>> {
        let mut ports = Vec::new();
        for _ in 0..count {
            let listener = tokio::net::TcpListener::bind((crate::api::IP, 0)).await?;
            ports.push(listener.local_addr()?.port());
            self.listeners.spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    drop(socket);
                }
            });
        }
        Ok(ports)
    }

    /// Stops every client after its current request, and waits for them (each
    /// request ends by the client timeout, so this is bounded).
    pub async fn stop(mut self) {
        let _ = self.stop_tx.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.listeners.abort_all();
    }
}

/// What every client has: the API, its name, its own random choices, the stop signal.
struct Client {
    api: Api,
    name: Arc<str>,
    rng: Rng,
    stop: watch::Receiver<bool>,
}

impl Client {
    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Waits `ms`, or less if the run stops meanwhile. Returns false on stop.
    async fn pause(&mut self, ms: u64) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(ms)) => !self.stopped(),
            _ = stop.wait_for(|s| *s) => false,
        }
    }

    /// Members in the order this request tries them: `first` if given, then
    /// the others at random.
    fn members(&mut self, first: Option<usize>) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.api.members()).collect();
        self.rng.shuffle(&mut order);
        if let Some(first) = first
            && let Some(at) = order.iter().position(|m| *m == first)
        {
            order.swap(0, at);
        }
        order.truncate(TRIES);
        order
    }
}

/// Whether a client should take an answer as final rather than try another member.
fn settled(answer: &Answer) -> bool {
    matches!(answer, Answer::Done | Answer::Beat(_))
        || matches!(answer, Answer::Status(status, _) if (400..500).contains(status))
}

/// What one logical request came to after trying up to [`TRIES`] members.
struct Tried {
    /// The answer that settled it, if one did.
    settled: Option<Answer>,
    /// Whether some member's answer left the outcome unknown.
    uncertain: bool,
}

/// One logical request of a client.
#[derive(Clone, Copy)]
enum Request<'a> {
    Write {
        key: &'a InstanceKey,
        ephemeral: bool,
        change: Change,
    },
    Beat {
        key: &'a InstanceKey,
        body: bool,
    },
}

impl Client {
    /// Sends one logical request to members (`first` first) until one
    /// settles it; counts every request sent in `ops`.
    async fn attempt(
        &mut self,
        first: Option<usize>,
        ops: &mut usize,
        request: Request<'_>,
    ) -> Tried {
        let mut uncertain = false;
        for member in self.members(first) {
            *ops += 1;
            let answer = match request {
                Request::Write {
                    key,
                    ephemeral,
                    change,
                } => {
                    self.api
                        .write(&self.name, member, key, ephemeral, change)
                        .await
                }
                Request::Beat { key, body } => self.api.beat(&self.name, member, key, body).await,
            };
            if settled(&answer) {
                return Tried {
                    settled: Some(answer),
                    uncertain,
                };
            }
            uncertain |= answer.uncertain();
        }
        Tried {
            settled: None,
            uncertain,
        }
    }
}

async fn ephemeral_client(
    mut c: Client,
    key: InstanceKey,
    style: BeatStyle,
    start: Start,
    may_go_silent: bool,
) {
    if start.delay_ms > 0 && !c.pause(start.delay_ms).await {
        return;
    }
    let silent_after = (may_go_silent && c.rng.percent(25)).then(|| c.rng.between(4, 40));
    let mut registered = false;
    let mut first = start.first_via;
    let mut beats_since_register = 0u64;
    let mut ops = 0;
    let write = |change| Request::Write {
        key: &key,
        ephemeral: true,
        change,
    };
    while !c.stopped() && ops < MAX_OPS {
        if silent_after.is_some_and(|n| ops as u64 >= n) {
            return; // the client is gone: its instance expires
        }
        if !registered {
            let tried = c
                .attempt(first.take(), &mut ops, write(Change::Register))
                .await;
            if let Some(answer) = tried.settled {
                registered = matches!(answer, Answer::Done);
                beats_since_register = 0;
            }
        } else if c.rng.percent(3) {
            let tried = c.attempt(None, &mut ops, write(Change::Deregister)).await;
            if let Some(Answer::Done) = tried.settled {
                registered = false;
                let away = c.rng.between(300, 1_500);
                if !c.pause(away).await {
                    return;
                }
                continue;
            }
        } else {
            let body = match style {
                BeatStyle::Light => false,
                BeatStyle::Body => true,
                BeatStyle::Java => beats_since_register == 0,
            };
            let beat = Request::Beat { key: &key, body };
            if let Some(answer) = c.attempt(None, &mut ops, beat).await.settled {
                // 20404: the member does not know the instance; a Nacos
                // client registers it again.
                registered = !matches!(answer, Answer::Beat(20404));
                beats_since_register += 1;
            }
        }
        let jitter = c.rng.between(0, 100);
        if !c.pause(BEAT_PERIOD_MS - 50 + jitter).await {
            return;
        }
    }
}

async fn persistent_writer(mut c: Client, keys: Vec<InstanceKey>) {
    // Per instance: Some(registered?) while the answers tell.
    let mut known: Vec<Option<bool>> = vec![Some(false); keys.len()];
    let mut ops = 0;
    while !c.stopped() && ops < MAX_OPS {
        let i = c.rng.index(keys.len());
        let change = if known[i] == Some(true) && c.rng.percent(35) {
            Change::Deregister
        } else {
            Change::Register
        };
        let write = Request::Write {
            key: &keys[i],
            ephemeral: false,
            change,
        };
        let tried = c.attempt(None, &mut ops, write).await;
        known[i] = match tried.settled {
            Some(Answer::Done) => Some(change == Change::Register),
            _ if tried.uncertain => None,
            _ => known[i],
        };
        let wait = c.rng.between(80, 250);
        if !c.pause(wait).await {
            return;
        }
    }
}

async fn lister(mut c: Client, services: Arc<Mutex<Vec<Arc<str>>>>) {
    let mut ops = 0;
    while !c.stopped() && ops < MAX_OPS * 4 {
        let service = {
            let services = services.lock().unwrap_or_else(|e| e.into_inner());
            if services.is_empty() {
                None
            } else {
                Some(Arc::clone(&services[c.rng.index(services.len())]))
            }
        };
        if let Some(service) = service {
            let member = c.rng.index(c.api.members());
            ops += 1;
            c.api.list(&c.name, member, &service, false).await;
        }
        let wait = c.rng.between(15, 45);
        if !c.pause(wait).await {
            return;
        }
    }
}
