//! `GET /nacre/v1/console/events`: the change feed as a server-sent event
//! stream, what keeps the console's lists and details live without a
//! refresh button (Consul's UI does the same with blocking queries).
//!
//! Each entry is one `change` event whose data is the feed entry's JSON
//! ([`crate::registry::feed::Change`]): what this member decided. Changes
//! other members decided reach this member's registry by replication, not
//! through its feed; the notifier tells [`ServiceChanges`] of them, and the
//! stream sends a `service` event `{"service": {namespace, group, name}}`
//! for each (coalesced, as the notifier coalesces). A reader gets a buffer of its own of
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

use serde_json::json;
use tokio::sync::broadcast;

use super::params::{Bad, namespace};
use super::{Console, Query};
use crate::notifier::{ChangeEvent, ChangeListener};
use crate::registry::feed::{Change, LIVE_BUFFER};
use crate::registry::model::ServiceKey;
use crate::shutdown::Shutdown;

/// Hears every applied change from the notifier and passes the service on
/// to the live streams; wants nothing while no stream is open, so it costs
/// writers nothing then.
pub struct ServiceChanges(broadcast::Sender<ServiceKey>);

impl Default for ServiceChanges {
    fn default() -> Self {
        ServiceChanges(broadcast::channel(LIVE_BUFFER).0)
    }
}

impl ChangeListener for ServiceChanges {
    fn wants(&self, _service: &ServiceKey) -> bool {
        self.0.receiver_count() > 0
    }

    fn on_change(&self, event: &ChangeEvent) {
        // No reader is not an error.
        let _ = self.0.send(event.service.clone());
    }
}

/// How often an idle stream sends a keep-alive comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /nacre/v1/console/events` (see the module's documentation).
pub(super) async fn events(
    State(console): State<Console>,
    query: Query,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Bad> {
    let readers = Readers {
        namespace: namespace(&query)?,
        feed: console.naming.registry().feed().subscribe(),
        services: console.services.0.subscribe(),
    };
    Ok(Sse::new(changes(readers, console.shutdown.clone()))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// What one stream reads.
struct Readers {
    /// Only changes in this namespace (the one the caller may read).
    namespace: String,
    feed: Receiver<Change>,
    services: Receiver<ServiceKey>,
}

/// Where a stream is.
enum Step {
    Open(Readers, Shutdown),
    Done,
}

/// The next event of `readers` in its namespace; `Err` once a reader
/// lagged or closed.
async fn next(readers: &mut Readers) -> Result<Event, RecvError> {
    loop {
        tokio::select! {
            change = readers.feed.recv() => {
                let change = change?;
                if change.service.namespace == readers.namespace {
                    return Ok(Event::default()
                        .event("change")
                        .json_data(&change)
                        .unwrap_or_else(|_| Event::default().comment("unrenderable change")));
                }
            }
            service = readers.services.recv() => {
                let service = service?;
                if service.namespace == readers.namespace {
                    return Ok(Event::default()
                        .event("service")
                        .data(json!({ "service": service }).to_string()));
                }
            }
        }
    }
}

/// The events of one reader, until it lags, the feed closes or the node stops.
fn changes(readers: Readers, shutdown: Shutdown) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Step::Open(readers, shutdown), |step| async move {
        let Step::Open(mut readers, mut shutdown) = step else {
            return None;
        };
        let received = tokio::select! {
            received = next(&mut readers) => received,
            () = shutdown.recv() => return None,
        };
        match received {
            Ok(event) => Some((Ok(event), Step::Open(readers, shutdown))),
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
        let services = ServiceChanges::default();
        let readers = Readers {
            namespace: "public".into(),
            feed: feed.subscribe(),
            services: services.0.subscribe(),
        };
        let stream = changes(readers, shutdown);
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
        let services = ServiceChanges::default();
        let readers = Readers {
            namespace: "public".into(),
            feed: feed.subscribe(),
            services: services.0.subscribe(),
        };
        let mut stream = Box::pin(changes(readers, shutdown));
        record(&feed, 3);
        for _ in 0..3 {
            assert!(stream.next().await.is_some());
        }
        trigger.trigger();
        assert!(stream.next().await.is_none());
    }
}
