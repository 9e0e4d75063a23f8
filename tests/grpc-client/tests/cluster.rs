//! Nacos 2.x clients (the Rust SDK, crates.io `nacos-sdk`) against a
//! three-process cluster (docs/DESIGN-V2.md, "Cluster"): a client's
//! instances are seen through every member and pushed to subscribers on
//! another member; when the member holding a client's connection is killed
//! with -9, those instances leave the survivors within the documented bound
//! (failure detection + `cluster.lease_grace_ms`), and a client that knows
//! other members reconnects to one and its redo brings its instance back.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use common::{Events, LIMIT, hold};
use nacos_sdk::api::naming::{NamingService, NamingServiceBuilder};
use nacre_e2e::cluster::{ClusterOptions, TestCluster};
use nacre_e2e::naming::{hosts, http, wait_hosts};
use nacre_e2e::wait::wait_for;

/// `cluster.lease_grace_ms` of the test cluster (the default is 5000).
const LEASE_GRACE_MS: u64 = 2_000;

/// A three-process cluster with `options` whose members wait `grace_ms`
/// (`cluster.lease_grace_ms`) before forgetting a lost member's clients.
async fn cluster_with_grace(grace_ms: u64, options: ClusterOptions) -> anyhow::Result<TestCluster> {
    let grace = grace_ms.to_string();
    TestCluster::start(options.with_env(&[("NACRE_CLUSTER_LEASE_GRACE_MS", &grace)])).await
}

/// The gRPC connections member `i` holds (`loader/current`: id → details).
async fn connections(cluster: &TestCluster, i: usize) -> anyhow::Result<usize> {
    let listing: serde_json::Value = http()
        .get(cluster.url(i, "/nacos/v2/core/loader/current"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(listing.as_object().map_or(0, serde_json::Map::len))
}

/// An SDK client on one member. Push-empty protection (on by default in
/// the SDK) would keep it from hearing that the last instance left.
async fn subscriber(member: &str) -> anyhow::Result<NamingService> {
    let props = common::props(member).naming_push_empty_protection(false);
    Ok(NamingServiceBuilder::new(props).build().await?)
}

#[tokio::test]
async fn a_killed_members_clients_leave_the_survivors_and_roaming_ones_come_back()
-> anyhow::Result<()> {
    let mut cluster = cluster_with_grace(LEASE_GRACE_MS, ClusterOptions::default()).await?;
    let addrs = cluster.addrs.clone();
    let member = |i: usize| addrs[i].to_string();
    let url = |i: usize| format!("http://{}", addrs[i]);
    let all = (0..3).map(member).collect::<Vec<_>>().join(",");

    // A client that knows every member: the SDK picks one at random.
    let roaming = hold(&all, "v2-roaming", 9201, true).await?;
    let mut holder = None;
    for i in 0..3 {
        if connections(&cluster, i).await? > 0 {
            holder = Some(i);
        }
    }
    let x = holder.context("no member lists the roaming client's connection")?;
    let (y, z) = ((x + 1) % 3, (x + 2) % 3);

    // A client that knows only that member: nowhere to go when it dies.
    let pinned = hold(&member(x), "v2-pinned", 9202, true).await?;

    // A subscriber on another member is pushed the pinned client's instance;
    // a v1 client on the third lists both.
    let watcher = subscriber(&member(y)).await?;
    let events = Arc::new(Events::default());
    watcher
        .subscribe("v2-pinned".into(), None, vec![], events.clone())
        .await?;
    events.wait_for(&["127.0.0.1:9202"]).await?;
    wait_hosts(&url(z), "v2-pinned", &["127.0.0.1:9202"], LIMIT).await?;
    wait_hosts(&url(z), "v2-roaming", &["127.0.0.1:9201"], LIMIT).await?;

    // kill -9 the member holding both connections.
    let killed = Instant::now();
    cluster.kill(x).await?;
    // Detection (2 probes 200 ms apart) + the lease grace + one lease tick,
    // with a margin for a loaded machine.
    let bound = Duration::from_millis(LEASE_GRACE_MS + 3_000);
    for survivor in [y, z] {
        wait_hosts(&url(survivor), "v2-pinned", &[], bound)
            .await
            .with_context(|| format!("member {survivor} still lists the dead member's client"))?;
    }
    let gone_after = killed.elapsed();
    events.wait_for(&[]).await?;
    ensure!(
        gone_after >= Duration::from_millis(LEASE_GRACE_MS),
        "the dead member's client left after {gone_after:?}, before the lease grace: \
         a member that is only slow would lose its clients"
    );
    eprintln!("a killed member's client left the survivors after {gone_after:?}");

    // The roaming client reconnected to a survivor and redid its
    // registration: listed by both survivors, held by one of them.
    for survivor in [y, z] {
        wait_hosts(&url(survivor), "v2-roaming", &["127.0.0.1:9201"], LIMIT).await?;
    }
    ensure!(
        connections(&cluster, y).await? + connections(&cluster, z).await? >= 2,
        "the roaming client is not connected to a survivor"
    );
    // And deregisters there like anywhere.
    roaming.finish(LIMIT).await?;
    for survivor in [y, z] {
        wait_hosts(&url(survivor), "v2-roaming", &[], LIMIT).await?;
    }
    drop(pinned);
    Ok(())
}

/// A member cut off from the others is not ready: it sends its clients
/// elsewhere (`ConnectResetRequest`, then the transport closes) before the
/// majority forgets its connections, forgetting their instances without a
/// deletion that could outrank their new registrations at the heal. A client
/// that knows only that member is back everywhere once the member is.
#[tokio::test]
async fn a_cut_off_members_clients_are_sent_elsewhere_and_come_back_after_the_heal()
-> anyhow::Result<()> {
    let proxied = ClusterOptions {
        proxied: true,
        ..ClusterOptions::default()
    };
    let cluster = cluster_with_grace(LEASE_GRACE_MS, proxied).await?;
    let addrs = cluster.addrs.clone();
    let url = |i: usize| format!("http://{}", addrs[i]);
    let (x, y, z) = (0, 1, 2);
    let pinned = hold(&addrs[x].to_string(), "v2-cut", 9301, true).await?;
    let others = format!("{},{}", addrs[y], addrs[z]);
    let elsewhere = hold(&others, "v2-cut", 9302, true).await?;
    let both = ["127.0.0.1:9301", "127.0.0.1:9302"];
    for i in [x, y, z] {
        wait_hosts(&url(i), "v2-cut", &both, LIMIT).await?;
    }

    cluster.isolate(x);
    // The majority forgets the cut-off member's client after the grace; its
    // own client stays.
    for survivor in [y, z] {
        wait_hosts(&url(survivor), "v2-cut", &["127.0.0.1:9302"], LIMIT).await?;
    }
    // The cut-off member sent its client away.
    wait_for(
        "the cut-off member to close its client's connection",
        LIMIT,
        || {
            let cluster = &cluster;
            async move { Ok(connections(cluster, x).await? == 0) }
        },
    )
    .await?;

    cluster.reconnect(x);
    // The pinned client's retries reach the member once it is ready again,
    // and its redo registers it: listed by every member, the other client's
    // instance untouched.
    for i in [x, y, z] {
        wait_hosts(&url(i), "v2-cut", &both, Duration::from_secs(30))
            .await
            .with_context(|| format!("member {i} after the heal"))?;
    }
    pinned.finish(LIMIT).await?;
    elsewhere.finish(LIMIT).await?;
    for i in [x, y, z] {
        wait_hosts(&url(i), "v2-cut", &[], LIMIT).await?;
    }
    Ok(())
}

/// A member that is alive but stalls (stopped with SIGSTOP, as a long pause
/// or an overloaded host would) keeps its clients' instances on every other
/// member the whole time, and after it resumes. The others' probes of it
/// time out, and it would lose its clients' copies on them only after
/// `down_after_failures` timed-out probes and the lease grace: 2 × 3 s + 4 s
/// here (docs/DESIGN-V2.md, "Limits"; a 14 s stall in this test saw them go
/// at 10.2 s).
#[tokio::test]
async fn a_stalled_member_keeps_its_clients_instances_everywhere() -> anyhow::Result<()> {
    const GRACE_MS: u64 = 4_000;
    const STALL: Duration = Duration::from_millis(1_500);
    let cluster = cluster_with_grace(GRACE_MS, ClusterOptions::default()).await?;
    let addrs = cluster.addrs.clone();
    let url = |i: usize| format!("http://{}", addrs[i]);
    let (x, y, z) = (0, 1, 2);
    let pinned = hold(&addrs[x].to_string(), "v2-stalled", 9401, true).await?;
    let expected = ["127.0.0.1:9401"];
    for i in [x, y, z] {
        wait_hosts(&url(i), "v2-stalled", &expected, LIMIT).await?;
    }

    // Watched on the others from the stall until a whole grace after it
    // (anything the stall set off has happened by then).
    cluster.pause(x).await?;
    let stalled = Instant::now();
    let watch_until = stalled + STALL + Duration::from_millis(GRACE_MS + 1_000);
    let mut resumed = false;
    let mut looks = 0;
    while Instant::now() < watch_until {
        if !resumed && stalled.elapsed() >= STALL {
            cluster.resume(x).await?;
            resumed = true;
        }
        for i in [y, z] {
            let shown = hosts(&url(i), "v2-stalled").await?;
            ensure!(
                shown.iter().map(String::as_str).eq(expected),
                "member {i} showed {shown:?} {:?} into a {STALL:?} stall of the client's member",
                stalled.elapsed()
            );
        }
        looks += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(resumed && looks > 10, "watched {looks} times");
    wait_hosts(&url(x), "v2-stalled", &expected, LIMIT).await?;
    pinned.finish(LIMIT).await?;
    for i in [x, y, z] {
        wait_hosts(&url(i), "v2-stalled", &[], LIMIT).await?;
    }
    Ok(())
}
