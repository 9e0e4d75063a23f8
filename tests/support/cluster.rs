//! Clusters of real `nacre` processes on loopback, and a TCP proxy per
//! directed link between them so a test can cut the network between members
//! (a partition at the connection level, not a switch inside the node).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail, ensure};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::JoinSet;

use crate::repo_root;
use crate::wait::{wait_for, wait_for_value};

/// A secret for one test cluster. Each cluster has its own, so a node of an
/// earlier test that has not died yet can never talk to a later cluster that
/// happens to reuse its ports.
fn fresh_secret() -> String {
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("test-{}-{nanos:x}-{n}", std::process::id())
}

/// The `nacre` binary that `cargo test --workspace` built next to the tests.
pub fn nacre_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test binary")?;
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test binary has no parent folder")?;
    let binary = dir.join("nacre");
    if !binary.exists() {
        bail!(
            "{} not found: build it first (`cargo build -p nacre`), or run the suite with `cargo test --workspace`",
            binary.display()
        );
    }
    Ok(binary)
}

/// A node's ports on loopback, held: its HTTP port (the answer) and its
/// gRPC port, HTTP + 1000, both bound until the listeners are dropped.
fn reserve_node_ports() -> anyhow::Result<(u16, [std::net::TcpListener; 2])> {
    for _ in 0..100 {
        let http = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
        let port = http.local_addr()?.port();
        let Some(grpc_port) = port.checked_add(1000) else {
            continue;
        };
        if let Ok(grpc) = std::net::TcpListener::bind(("127.0.0.1", grpc_port)) {
            return Ok((port, [http, grpc]));
        }
    }
    bail!("no free port P on loopback with P + 1000 free too, in 100 tries")
}

/// A free port on loopback (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A TCP proxy for one direction of one link; `cut` drops every connection
/// through it and refuses new ones until `heal`.
pub struct LinkProxy {
    pub addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<JoinSet<()>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl LinkProxy {
    pub async fn start(target: SocketAddr) -> anyhow::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let accept = {
            let cut = Arc::clone(&cut);
            let connections = Arc::clone(&connections);
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if cut.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut set = connections.lock().unwrap_or_else(|e| e.into_inner());
                    set.spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            })
        };
        Ok(LinkProxy {
            addr,
            cut,
            connections,
            accept,
        })
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.connections
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort_all();
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Options of a test cluster.
#[derive(Clone)]
pub struct ClusterOptions {
    pub size: usize,
    /// Route member-to-member traffic through [`LinkProxy`]s.
    pub proxied: bool,
    /// Extra `NACRE_*` variables for every node.
    pub env: Vec<(String, String)>,
    /// Start each node once the one before it is listening (its banner is
    /// out), as an operator starting members by hand does; by default all
    /// start at once.
    pub one_by_one: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            size: 3,
            proxied: false,
            env: Vec::new(),
            one_by_one: false,
        }
    }
}

impl ClusterOptions {
    /// These options with `vars` (`NACRE_*` name, value) added to [`Self::env`].
    pub fn with_env(mut self, vars: &[(&str, &str)]) -> ClusterOptions {
        self.env
            .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }
}

/// Several `nacre` processes forming one cluster.
pub struct TestCluster {
    pub addrs: Vec<SocketAddr>,
    children: Vec<Option<Child>>,
    /// `links[i][j]`: the proxy node i dials to reach node j (proxied clusters).
    links: Vec<Vec<Option<LinkProxy>>>,
    options: ClusterOptions,
    /// The cluster credential of this cluster.
    pub secret: String,
    pub dir: tempfile::TempDir,
    binary: PathBuf,
}

impl TestCluster {
    /// Which node (its index in `addrs`) is responsible for service `name`
    /// of the default namespace and group while every member is up.
    pub fn owner_of(&self, name: &str) -> usize {
        let all: Vec<usize> = (0..self.addrs.len()).collect();
        self.owner_among(name, &all)
    }

    /// Which node is responsible for service `name` while exactly the nodes
    /// `members` (indexes) are ready.
    pub fn owner_among(&self, name: &str, members: &[usize]) -> usize {
        let key = nacre::registry::model::ServiceKey::new("public", "DEFAULT_GROUP", name);
        let mut view: Vec<SocketAddr> = members.iter().map(|i| self.addrs[*i]).collect();
        view.sort_unstable();
        let owner = view[(nacre::cluster::service_hash(&key) % view.len() as u64) as usize];
        self.addrs.iter().position(|a| *a == owner).unwrap_or(0)
    }

    /// Starts every node and waits until each is ready and sees all the others.
    pub async fn start(options: ClusterOptions) -> anyhow::Result<TestCluster> {
        let binary = nacre_binary()?;
        let dir = tempfile::tempdir()?;
        // Each node's HTTP and gRPC (HTTP + 1000) ports stay bound here
        // until the link proxies have theirs: a proxy binding port 0 could
        // otherwise be given a node's port just released (the node then
        // cannot start, and the cluster never forms).
        let mut reserved = Vec::new();
        let mut addrs = Vec::new();
        for _ in 0..options.size {
            let (port, held) = reserve_node_ports()?;
            addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
            reserved.push(held);
        }
        let mut links = Vec::new();
        for i in 0..options.size {
            let mut row = Vec::new();
            for (j, addr) in addrs.iter().enumerate() {
                row.push(if options.proxied && i != j {
                    Some(LinkProxy::start(*addr).await?)
                } else {
                    None
                });
            }
            links.push(row);
        }
        drop(reserved);
        let mut cluster = TestCluster {
            addrs,
            children: Vec::new(),
            links,
            options,
            secret: fresh_secret(),
            dir,
            binary,
        };
        for i in 0..cluster.options.size {
            let child = cluster.spawn(i)?;
            cluster.children.push(Some(child));
            if cluster.options.one_by_one {
                cluster.wait_listening(i, Duration::from_secs(20)).await?;
            }
        }
        cluster
            .wait_converged(Duration::from_secs(20))
            .await
            .with_context(|| {
                let tails: Vec<String> = (0..cluster.addrs.len())
                    .map(|i| format!("node {i}'s log:\n{}", cluster.log_tail(i)))
                    .collect();
                tails.join("\n")
            })?;
        Ok(cluster)
    }

    fn members_for(&self, i: usize) -> String {
        self.addrs
            .iter()
            .enumerate()
            .map(|(j, addr)| match &self.links[i][j] {
                Some(proxy) => format!("{addr}@{}", proxy.addr),
                None => addr.to_string(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&self, i: usize) -> anyhow::Result<Child> {
        let addr = self.addrs[i];
        let data = self.dir.path().join(format!("node{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{i}.log")))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("start")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(addr.port().to_string())
            .arg("--data-dir")
            .arg(&data)
            .arg("--members")
            .arg(self.members_for(i))
            .env("NACRE_CLUSTER_SECRET", &self.secret)
            .env("NACRE_CLUSTER_PROBE_INTERVAL_MS", "200")
            .env("NACRE_PERSISTENT_SYNC_WRITES", "false")
            .env("NACRE_PUSH_ENABLED", "false")
            // Instances in these tests sit at made-up addresses: probing them
            // would send packets off the machine. Tests that probe turn it on.
            .env("NACRE_HEALTH_PROBE_ENABLED", "false")
            .env("RUST_LOG", "info,openraft=warn")
            .current_dir(repo_root())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        cmd.spawn().with_context(|| format!("starting node {i}"))
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{}", self.addrs[i], path)
    }

    /// Everything node `i` wrote (stdout and stderr: its banner and its log)
    /// since the cluster started.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }

    /// Waits until node `i` has printed its start banner, whose last line
    /// names the log settings: it is bound and serving.
    async fn wait_listening(&self, i: usize, limit: Duration) -> anyhow::Result<()> {
        wait_for(&format!("node {i}'s start banner"), limit, || async {
            self.log(i).lines().any(|l| l.starts_with("  log "))
        })
        .await
        .map_err(|e| anyhow!("{e:#}; its log so far:\n{}", self.log_tail(i)))
    }

    /// The last lines of a node's log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("node{i}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// kill -9.
    pub async fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.children[i].take() {
            child.start_kill().context("killing a node")?;
            child.wait().await?;
        }
        Ok(())
    }

    pub async fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i).await?;
        let child = self.spawn(i)?;
        self.children[i] = Some(child);
        Ok(())
    }

    /// Stops node `i` with SIGSTOP: its sockets stay open and connections
    /// are accepted, but it answers nothing (a hung or swapped-out member)
    /// until [`TestCluster::resume`]. A stopped node is still killed on drop.
    pub async fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, "STOP").await
    }

    /// Continues a node stopped by [`TestCluster::pause`].
    pub async fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, "CONT").await
    }

    async fn signal(&self, i: usize, signal: &str) -> anyhow::Result<()> {
        let pid = self.children[i]
            .as_ref()
            .and_then(Child::id)
            .with_context(|| format!("node {i} is not running"))?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .await
            .context("running kill")?;
        ensure!(status.success(), "kill -{signal} {pid}: {status}");
        Ok(())
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.children[i].is_some()
    }

    /// Cuts every link to and from node `i`.
    pub fn isolate(&self, i: usize) {
        self.for_links_of(i, LinkProxy::cut);
    }

    pub fn reconnect(&self, i: usize) {
        self.for_links_of(i, LinkProxy::heal);
    }

    /// Cuts (or with `cut` false, heals) the one direction of link in which
    /// node `from` reaches node `to`.
    pub fn cut_link(&self, from: usize, to: usize, cut: bool) {
        if let Some(link) = &self.links[from][to] {
            if cut { link.cut() } else { link.heal() }
        }
    }

    fn for_links_of(&self, i: usize, action: impl Fn(&LinkProxy)) {
        for (a, row) in self.links.iter().enumerate() {
            for (b, link) in row.iter().enumerate() {
                if (a == i || b == i)
                    && let Some(link) = link
                {
                    action(link);
                }
            }
        }
    }

    /// `operator/servers` of node `i`.
    pub async fn servers(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        Ok(reqwest::get(self.url(i, "/nacos/v1/ns/operator/servers"))
            .await?
            .json()
            .await?)
    }

    /// Waits until every running node has applied what node `leader` has
    /// committed now (`raft.commitIndex` against each `raft.lastApplied` in
    /// `operator/servers`). A Raft write is applied on the member that
    /// answered it at once, on the others up to a replication round later;
    /// a write that timed out may still commit.
    pub async fn wait_raft_applied(&self, leader: usize, limit: Duration) -> anyhow::Result<()> {
        let committed = self.servers(leader).await?["raft"]["commitIndex"]
            .as_u64()
            .context("the leader reports no commitIndex")?;
        wait_for(
            &format!("every running node to apply the leader's commit index {committed}"),
            limit,
            || async {
                for i in (0..self.addrs.len()).filter(|i| self.is_running(*i)) {
                    let applied = self.servers(i).await?["raft"]["lastApplied"].as_u64();
                    if applied.is_none_or(|a| a < committed) {
                        return Ok(false);
                    }
                }
                Ok(true)
            },
        )
        .await
    }

    /// The checksum of every service on node `i` (internal route, with the secret).
    pub async fn digest(&self, i: usize) -> anyhow::Result<serde_json::Value> {
        let reply = reqwest::Client::new()
            .get(self.url(i, "/nacre/v1/distro/digest"))
            .header(nacre::wire::SECRET_HEADER, &self.secret)
            .send()
            .await?;
        anyhow::ensure!(reply.status() == 200, "digest: {}", reply.status());
        Ok(reply.json::<serde_json::Value>().await?["services"].clone())
    }

    /// Waits until every running node is ready and has every running node in its view.
    pub async fn wait_converged(&self, limit: Duration) -> anyhow::Result<()> {
        // Views are sorted by address, as every member sorts them.
        let mut running: Vec<SocketAddr> = (0..self.addrs.len())
            .filter(|i| self.is_running(*i))
            .map(|i| self.addrs[i])
            .collect();
        running.sort_unstable();
        let running: Vec<String> = running.iter().map(SocketAddr::to_string).collect();
        wait_for(
            "every running node to be ready with the same view",
            limit,
            || async {
                for i in (0..self.addrs.len()).filter(|i| self.is_running(*i)) {
                    let s = self.servers(i).await.with_context(|| format!("node {i}"))?;
                    let view: Vec<String> = s["view"]
                        .as_array()
                        .map(|v| {
                            v.iter()
                                .filter_map(|a| a.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    ensure!(
                        s["ready"] == true && view == running,
                        "node {i}: ready={} view={view:?}",
                        s["ready"]
                    );
                }
                Ok(true)
            },
        )
        .await
    }

    /// Waits until every running node has the same, non-empty digest; returns it.
    pub async fn wait_same_data(&self, limit: Duration) -> anyhow::Result<serde_json::Value> {
        wait_for_value(
            "every running node to hold the same data",
            limit,
            || async {
                let mut digests = Vec::new();
                for i in (0..self.addrs.len()).filter(|i| self.is_running(*i)) {
                    digests.push(self.digest(i).await.unwrap_or_default());
                }
                let first = digests.first().cloned().unwrap_or_default();
                ensure!(
                    digests.iter().all(|d| *d == first)
                        && first.as_object().is_some_and(|o| !o.is_empty()),
                    "the nodes' digests: {digests:#?}"
                );
                Ok(Some(first))
            },
        )
        .await
    }
}
