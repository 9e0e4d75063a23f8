//! The bounded wait both test suites share: poll a condition until it holds
//! or a time limit passes. A test waits on what it can observe, never sleeps
//! and hopes. The host's integration tests use it through their panicking
//! `common::wait_for`, with the same arguments in the same order.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often a condition is asked again.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// What a condition answers: `bool`, or `anyhow::Result<bool>` when asking
/// can fail (a node still starting, a connection refused).
pub trait Check {
    /// The answer as `Ok(true)` (holds), `Ok(false)` (not yet) or an error.
    fn into_result(self) -> anyhow::Result<bool>;
}

impl Check for bool {
    fn into_result(self) -> anyhow::Result<bool> {
        Ok(self)
    }
}

impl Check for anyhow::Result<bool> {
    fn into_result(self) -> anyhow::Result<bool> {
        self
    }
}

/// Asks `check` every [`POLL_EVERY`] until it answers true. An error counts
/// as "not yet" until `limit` has passed; then the wait fails with that error
/// (or with a timeout naming `what` if the last answer was false).
pub async fn wait_for<F, Fut>(what: &str, limit: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future,
    Fut::Output: Check,
{
    wait_for_value(what, limit, || {
        let answer = check();
        async move { Ok(answer.await.into_result()?.then_some(())) }
    })
    .await
}

/// [`wait_for`] a value: `check` answers `Ok(Some(value))` once there is one
/// (the wait returns it), `Ok(None)` or an error while there is not yet.
pub async fn wait_for_value<T, F, Fut>(
    what: &str,
    limit: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) if start.elapsed() > limit => {
                return Err(e.context(format!("waiting for {what}")));
            }
            Err(_) => {}
        }
        if start.elapsed() > limit {
            bail!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_condition_that_comes_true_ends_the_wait() {
        let mut asked = 0;
        let waited = wait_for("the third answer", Duration::from_secs(5), || {
            asked += 1;
            let now = asked;
            async move { now >= 3 }
        })
        .await;
        assert!(waited.is_ok());
        assert_eq!(asked, 3);
    }

    #[tokio::test]
    async fn a_condition_that_never_holds_fails_naming_what_was_awaited() {
        let limit = Duration::from_millis(60);
        let err = wait_for("nothing", limit, || async { false })
            .await
            .expect_err("never true");
        assert_eq!(
            err.to_string(),
            format!("timed out after {limit:?} waiting for nothing")
        );
    }

    #[tokio::test]
    async fn a_value_ends_the_wait_and_is_returned() {
        let mut asked = 0;
        let value = wait_for_value("the second answer", Duration::from_secs(5), || {
            asked += 1;
            let now = asked;
            async move { Ok((now == 2).then_some(now * 10)) }
        })
        .await;
        assert_eq!(value.ok(), Some(20));
    }

    #[tokio::test]
    async fn a_failing_check_fails_with_its_own_error_at_the_limit() {
        let err = wait_for("a peer", Duration::from_millis(60), || async {
            Err::<bool, _>(anyhow::anyhow!("connection refused"))
        })
        .await
        .expect_err("never answers");
        assert_eq!(format!("{err:#}"), "waiting for a peer: connection refused");
    }
}
