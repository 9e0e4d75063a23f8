//! The nemesis: the six faults, each injected, held for a seeded time and
//! recovered from, with every step and every observed reaction (a cut-off
//! member noticing, the cluster converging) recorded in the history.
//! Holds are the faults' durations; everything the nemesis waits *for* is a
//! condition polled with a bound.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nacre_e2e::cluster::TestCluster;

use crate::clients::{BeatStyle, Load, Start};
use crate::history::{Answer, Fault, History, Op};
use crate::rng::Rng;

/// How long the cluster may take to be whole again after a fault heals.
const RECOVERY_LIMIT: Duration = Duration::from_secs(20);
/// How long a cut-off member may take to notice and stop serving.
const NOTICE_LIMIT: Duration = Duration::from_secs(5);
/// Ephemeral clients that start together in the burst of the owner kill.
const BURST: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// kill -9 of a member, restart after the hold.
    KillRestart,
    /// Both directions of every link of one member cut, healed after the hold.
    Partition,
    /// kill -9 of a service's responsible member while clients register
    /// new instances of that service, many through that member.
    OwnerKillMidBurst,
    /// kill -9 of the Raft leader, restart after the hold.
    LeaderKill,
    /// The Raft leader cut off from both others, healed after the hold.
    LeaderCut,
    /// kill -9 of every member, restart of all three.
    FullRestart,
}

pub const ALL: [Kind; 6] = [
    Kind::KillRestart,
    Kind::Partition,
    Kind::OwnerKillMidBurst,
    Kind::LeaderKill,
    Kind::LeaderCut,
    Kind::FullRestart,
];

pub struct Nemesis<'a> {
    pub cluster: &'a mut TestCluster,
    pub history: History,
    pub rng: Rng,
}

impl Nemesis<'_> {
    /// Injects one fault, holds it, recovers, and waits until the cluster is
    /// whole again. An error means it did not recover within the bounds.
    pub async fn inject(&mut self, kind: Kind, load: &mut Load) -> anyhow::Result<()> {
        self.history.event(Fault::Note(format!("{kind:?}")));
        match kind {
            Kind::KillRestart => {
                let member = self.rng.index(3);
                self.kill_and_restart(member, 1_000, 3_000).await?;
            }
            Kind::Partition => {
                let member = self.rng.index(3);
                self.cut_and_heal(member).await?;
            }
            Kind::OwnerKillMidBurst => self.owner_kill_mid_burst(load).await?,
            Kind::LeaderKill => {
                let leader = self.leader().await?;
                self.kill_and_restart(leader, 800, 2_500).await?;
            }
            Kind::LeaderCut => {
                let leader = self.leader().await?;
                self.cut_and_heal(leader).await?;
            }
            Kind::FullRestart => {
                self.history.event(Fault::KillAll);
                for member in 0..3 {
                    self.cluster.kill(member).await?;
                }
                self.hold(300, 800).await;
                self.history.event(Fault::RestartAll);
                for member in 0..3 {
                    self.cluster.restart(member).await?;
                }
                self.converge().await?;
            }
        }
        Ok(())
    }

    async fn hold(&mut self, low_ms: u64, high_ms: u64) {
        let ms = self.rng.between(low_ms, high_ms);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    async fn kill_and_restart(
        &mut self,
        member: usize,
        low_ms: u64,
        high_ms: u64,
    ) -> anyhow::Result<()> {
        self.history.event(Fault::Kill(member));
        self.cluster.kill(member).await?;
        self.hold(low_ms, high_ms).await;
        self.history.event(Fault::Restart(member));
        self.cluster.restart(member).await?;
        self.converge().await
    }

    async fn cut_and_heal(&mut self, member: usize) -> anyhow::Result<()> {
        self.history.event(Fault::Isolate(member));
        self.cluster.isolate(member);
        let cut_at = Instant::now();
        let noticed = self.noticed_cut(member).await;
        // Hold the partition for a while after it was noticed (or given up on).
        let held = cut_at.elapsed().as_millis() as u64;
        self.hold(1_500u64.saturating_sub(held), 3_000u64.saturating_sub(held))
            .await;
        self.history.event(Fault::Heal(member));
        self.cluster.reconnect(member);
        noticed?;
        self.converge().await
    }

    /// Waits until an isolated member reports itself not ready.
    async fn noticed_cut(&self, member: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(servers) = self.cluster.servers(member).await
                && servers["ready"] == false
            {
                self.history.event(Fault::NoticedCut(member));
                return Ok(());
            }
            if started.elapsed() > NOTICE_LIMIT {
                bail!("node {member}, cut off, still reported itself ready after {NOTICE_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn owner_kill_mid_burst(&mut self, load: &mut Load) -> anyhow::Result<()> {
        // The member to kill is the seed's choice; the service is the first
        // name that member is responsible for (ports, hence owners, differ
        // from run to run).
        let owner = self.rng.index(3);
        let tag = self.rng.below(1_000_000);
        let service: Arc<str> = (0..1_000)
            .map(|n| format!("burst-{tag}-{n}"))
            .find(|name| self.cluster.owner_of(name) == owner)
            .map(Arc::from)
            .context("no service name maps to the member to kill")?;
        load.add_service(&service);
        for n in 0..BURST {
            let style = [BeatStyle::Light, BeatStyle::Body, BeatStyle::Java][self.rng.index(3)];
            let first_via = self.rng.percent(60).then_some(owner);
            let start = Start {
                first_via,
                delay_ms: n as u64 * 15,
            };
            load.ephemeral(&service, style, start, false);
        }
        // Kill the owner once some of the burst is acknowledged.
        let acked_before_kill = self.rng.between(3, 14) as usize;
        let started = Instant::now();
        let burst = Arc::clone(&service);
        while self.history.count(|r| {
            matches!(&r.op, Op::Register { key, .. } if key.service == burst)
                && matches!(r.answer, Answer::Done)
        }) < acked_before_kill
        {
            if started.elapsed() > Duration::from_secs(10) {
                bail!(
                    "the burst on {service} got fewer than {acked_before_kill} registrations acknowledged in 10 s"
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        self.kill_and_restart(owner, 1_000, 2_500).await
    }

    /// The Raft leader every running member agrees on.
    async fn leader(&self) -> anyhow::Result<usize> {
        let started = Instant::now();
        loop {
            if let Some(leader) = self.agreed_leader().await {
                return Ok(leader);
            }
            if started.elapsed() > RECOVERY_LIMIT {
                bail!("the members agreed on no Raft leader within {RECOVERY_LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn agreed_leader(&self) -> Option<usize> {
        let mut leader = None;
        for member in (0..3).filter(|m| self.cluster.is_running(*m)) {
            let servers = self.cluster.servers(member).await.ok()?;
            let named = servers["raft"]["leader"].as_str()?.to_string();
            if leader.get_or_insert_with(|| named.clone()) != &named {
                return None;
            }
        }
        let leader = leader?;
        self.cluster
            .addrs
            .iter()
            .position(|a| a.to_string() == leader)
            .filter(|m| self.cluster.is_running(*m))
    }

    /// Waits until every member is ready with the full view and a Raft
    /// leader; then, for the record, until every member's Raft state machine
    /// has applied what the leader had committed at that moment.
    pub async fn converge(&self) -> anyhow::Result<()> {
        self.cluster
            .wait_converged(RECOVERY_LIMIT)
            .await
            .with_context(|| {
                format!(
                    "{}\n{}\n{}",
                    self.cluster.log_tail(0),
                    self.cluster.log_tail(1),
                    self.cluster.log_tail(2)
                )
            })?;
        let leader = self.leader().await?;
        self.history.event(Fault::Converged);
        self.raft_caught_up(leader).await
    }

    async fn raft_caught_up(&self, leader: usize) -> anyhow::Result<()> {
        self.cluster
            .wait_raft_applied(leader, RECOVERY_LIMIT)
            .await?;
        self.history.event(Fault::RaftCaughtUp);
        Ok(())
    }
}
