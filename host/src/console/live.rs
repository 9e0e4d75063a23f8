//! `GET /nacre/v1/console/events`: the change feed as a server-sent event
//! stream, what keeps the console's lists and details live without a
//! refresh button (Consul's UI does the same with blocking queries).
//!
//! Each entry is one `change` event whose data is the feed entry's JSON
//! ([`crate::registry::feed::Change`]). A reader gets a buffer of its own of
//! [`LIVE_BUFFER`] entries: one that falls further behind is sent a final
//! `dropped` event and the stream ends (the browser reconnects and reloads
//! what it shows) — a slow reader never slows the node. Streams end when the
//! node shuts down, so they never hold its shutdown up. A comment line every
//! 15 s keeps idle proxies from closing the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::Console;
use crate::registry::feed::{Change, LIVE_BUFFER};
use crate::shutdown::Shutdown;

/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /nacre/v1/console/events` (see the module's documentation).
pub(super) async fn events(
    State(console): State<Console>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let reader = console.naming.registry().feed().subscribe();
    Sse::new(changes(reader, console.shutdown.clone()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// Where a stream is.
enum Step {
    Open(Receiver<Change>, Shutdown),
    Done,
}

/// The events of one reader, until it lags, the feed closes or the node stops.
fn changes(
    reader: Receiver<Change>,
    shutdown: Shutdown,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Step::Open(reader, shutdown), |step| async move {
        let Step::Open(mut reader, mut shutdown) = step else {
            return None;
        };
        let received = tokio::select! {
            received = reader.recv() => received,
            () = shutdown.recv() => return None,
        };
        match received {
            Ok(change) => {
                let event = Event::default()
                    .event("change")
                    .json_data(&change)
                    .unwrap_or_else(|_| Event::default().comment("unrenderable change"));
                Some((Ok(event), Step::Open(reader, shutdown)))
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "console stream reader fell behind; dropped");
                let event = Event::default()
                    .event("dropped")
                    .data(format!("fell more than {LIVE_BUFFER} changes behind"));
                Some((Ok(event), Step::Done))
            }
            Err(RecvError::Closed) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;
    use crate::registry::feed::{Cause, ChangeFeed, What};
    use crate::registry::model::{InstanceId, ServiceKey};

    fn record(feed: &ChangeFeed, n: usize) {
        let key = ServiceKey::new("public", "DEFAULT_GROUP", "orders");
        let id = InstanceId::new("DEFAULT", "10.0.0.1", 80);
        for at in 0..n as i64 {
            feed.record(at, &key, &id, What::Healthy, Cause::BeatResumed);
        }
    }

    /// A reader more than the buffer behind gets `dropped` and its stream
    /// ends; the writer never waited for it.
    #[tokio::test]
    async fn a_reader_that_falls_behind_is_dropped() {
        let feed = ChangeFeed::default();
        let (_trigger, shutdown) = crate::shutdown::channel();
        let stream = changes(feed.subscribe(), shutdown);
        record(&feed, LIVE_BUFFER + 10);
        let events: Vec<_> = stream.collect().await;
        assert_eq!(events.len(), 1, "only the notice that it was dropped");
    }

    /// A reader that keeps up gets every change, and its stream ends when
    /// the node shuts down.
    #[tokio::test]
    async fn a_reader_that_keeps_up_gets_every_change_until_shutdown() {
        let feed = ChangeFeed::default();
        let (trigger, shutdown) = crate::shutdown::channel();
        let mut stream = Box::pin(changes(feed.subscribe(), shutdown));
        record(&feed, 3);
        for _ in 0..3 {
            assert!(stream.next().await.is_some());
        }
        trigger.trigger();
        assert!(stream.next().await.is_none());
    }
}
