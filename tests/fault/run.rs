//! One seed's run: a proxied three-member cluster, the load, the six faults
//! in a seeded order, the recovery round, and the checker's verdict.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nacre_e2e::cluster::{ClusterOptions, TestCluster};

use crate::api::Api;
use crate::checker::{self, Check, Failure, Verdict};
use crate::clients::{BeatStyle, Load, Start};
use crate::history::{
    Answer, At, Event, Fault, History, InstanceKey, Op, Record, event_json, record_json,
};
use crate::model::{self, Timeline};
use crate::nemesis::{self, Nemesis};
use crate::rng::Rng;
use crate::settings::node_env;
use crate::watchdog;

/// Ephemeral services, and clients (instances) in each.
const EPHEMERAL_SERVICES: usize = 6;
const CLIENTS_PER_SERVICE: usize = 4;
/// Persistent services; two writers each own half of the listening ports in all of them.
const PERSISTENT_SERVICES: usize = 3;
const LISTENING_PORTS: usize = 6;
const LISTERS: usize = 3;
/// How long the recovery round may wait for every member to list what it must.
const RECOVERY_ROUND: Duration = Duration::from_secs(3);

/// What one seed came to.
pub struct SeedRun {
    pub seed: u64,
    pub took: Duration,
    pub records: Vec<Record>,
    pub events: Vec<Event>,
    /// t=0 of the history, as the members' logs write the time.
    pub wall_start: String,
    pub verdict: Verdict,
    /// Where the history (and, on failure, the members' logs) was written.
    pub saved: Option<PathBuf>,
}

pub async fn run_seed(seed: u64) -> anyhow::Result<SeedRun> {
    let took = Instant::now();
    let rng = Rng::new(seed);
    let mut cluster = TestCluster::start(ClusterOptions {
        size: 3,
        proxied: true,
        env: node_env(),
    })
    .await?;
    let history = History::new();
    let watchdog = watchdog::watch(history.clone());
    let urls = (0..3).map(|i| cluster.url(i, "")).collect();
    let api = Api::new(urls, history.clone())?;
    let mut load = Load::new(api.clone(), rng.fork(1));
    let mut findings = Vec::new();
    let mut nemesis = Nemesis {
        cluster: &mut cluster,
        history: history.clone(),
        rng: rng.fork(2),
    };
    nemesis.converge().await?;
    start_load(&mut load, &mut rng.fork(3)).await?;
    warm_up(&history).await?;

    let mut kinds = nemesis::ALL;
    nemesis.rng.shuffle(&mut kinds);
    for kind in kinds {
        let quiet = nemesis.rng.between(500, 1_500);
        tokio::time::sleep(Duration::from_millis(quiet)).await;
        if let Err(e) = nemesis.inject(kind, &mut load).await {
            findings.push(recovery_failure(&history, format!("{kind:?}: {e:#}")));
            if let Err(e) = nemesis.converge().await {
                findings.push(recovery_failure(&history, format!("gave up: {e:#}")));
                break;
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let stopped = history.now();
    history.event(Fault::Note("clients stopped".into()));
    load.stop().await;
    recovery_round(&api, &history, stopped).await;
    watchdog.abort();

    let (records, events) = history.snapshot();
    let timelines = model::timelines(&records, &events);
    let owners: BTreeMap<Arc<str>, usize> = timelines
        .keys()
        .map(|k| (Arc::clone(&k.service), cluster.owner_of(&k.service)))
        .collect();
    let mut verdict = checker::check(&checker::Context {
        records: &records,
        events: &events,
        timelines: &timelines,
        owners: &owners,
        stopped,
    });
    verdict.failures.extend(findings);
    let saved = save(
        seed,
        &records,
        &events,
        &cluster,
        !verdict.failures.is_empty(),
    )
    .ok();
    Ok(SeedRun {
        seed,
        took: took.elapsed(),
        records,
        events,
        wall_start: crate::history::utc_time_of_day(history.wall_start),
        verdict,
        saved,
    })
}

fn recovery_failure(history: &History, what: String) -> Failure {
    Failure {
        check: Check::Recovery,
        key: None,
        member: None,
        at: history.now(),
        what,
    }
}

async fn start_load(load: &mut Load, rng: &mut Rng) -> anyhow::Result<()> {
    let styles = [BeatStyle::Light, BeatStyle::Body, BeatStyle::Java];
    for s in 0..EPHEMERAL_SERVICES {
        let service: Arc<str> = Arc::from(format!("eph-{s}"));
        for _ in 0..CLIENTS_PER_SERVICE {
            let style = styles[rng.index(styles.len())];
            load.ephemeral(&service, style, Start::default(), true);
        }
    }
    let ports = load.listen(LISTENING_PORTS).await?;
    let services: Vec<Arc<str>> = (0..PERSISTENT_SERVICES)
        .map(|s| Arc::from(format!("db-{s}")))
        .collect();
    let (first, second) = ports.split_at(LISTENING_PORTS / 2);
    load.persistent(&services, first);
    load.persistent(&services, second);
    for _ in 0..LISTERS {
        load.lister();
    }
    Ok(())
}

/// Waits until every first ephemeral client has an acknowledged registration.
async fn warm_up(history: &History) -> anyhow::Result<()> {
    let want = EPHEMERAL_SERVICES * CLIENTS_PER_SERVICE;
    let started = Instant::now();
    loop {
        let registered = history.count(|r| {
            matches!(
                r.op,
                Op::Register {
                    ephemeral: true,
                    ..
                }
            ) && matches!(r.answer, Answer::Done)
        });
        if registered >= want {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(10),
            "only {registered} of {want} clients registered within 10 s of the start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// After the clients stopped: lists every service on every member until each
/// shows every instance it must and none it must not, or the round's bound
/// passes. Every list is recorded; the checker judges the last of each.
async fn recovery_round(api: &Api, history: &History, stopped: At) {
    let (records, events) = history.snapshot();
    let timelines = model::timelines(&records, &events);
    let mut services: BTreeMap<Arc<str>, Vec<(&InstanceKey, &Timeline)>> = BTreeMap::new();
    for (key, timeline) in &timelines {
        services
            .entry(Arc::clone(&key.service))
            .or_default()
            .push((key, timeline));
    }
    let client: Arc<str> = Arc::from("recovery");
    let started = Instant::now();
    let mut pending: Vec<(usize, Arc<str>)> = (0..api.members())
        .flat_map(|m| services.keys().map(move |s| (m, Arc::clone(s))))
        .collect();
    while !pending.is_empty() && started.elapsed() < RECOVERY_ROUND {
        let mut still = Vec::new();
        for (member, service) in pending {
            let answer = api.list(&client, member, &service, true).await;
            let Answer::Listed { ports, .. } = answer else {
                still.push((member, service));
                continue;
            };
            let good = services[&service].iter().all(|(key, timeline)| {
                let listed = ports.binary_search(&key.port).is_ok();
                if timeline.present_at_end(stopped).is_some() {
                    listed
                } else {
                    !(timeline.absent_at_end() && listed)
                }
            });
            if !good {
                still.push((member, service));
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Writes the history (and the members' logs when the seed failed) under
/// `<target>/fault-history/seed-<n>/`.
fn save(
    seed: u64,
    records: &[Record],
    events: &[Event],
    cluster: &TestCluster,
    with_logs: bool,
) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let target = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or_else(|| anyhow::anyhow!("no target folder"))?;
    let dir = target.join("fault-history").join(format!("seed-{seed}"));
    std::fs::create_dir_all(&dir)?;
    let mut lines = String::new();
    for event in events {
        lines.push_str(&event_json(event).to_string());
        lines.push('\n');
    }
    for record in records {
        lines.push_str(&record_json(record).to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), lines)?;
    for i in 0..3 {
        let log = cluster.dir.path().join(format!("node{i}.log"));
        let copy = dir.join(format!("node{i}.log"));
        if with_logs {
            std::fs::copy(&log, &copy)?;
        } else if copy.exists() {
            std::fs::remove_file(&copy)?;
        }
    }
    Ok(dir)
}
