//! Sends every event to the services subscribed to its type (see
//! [`vigil_domain::events::subscription`]).
//!
//! The reactor keeps every subscription in memory (gathered from the read models when a node
//! starts running it, then followed in the log) and, for each event the log publishes, POSTs the
//! event as the event service shows it (`{id, type, content, creation_timestamp,
//! update_timestamp}`) to each subscribed service's URL, in log order. A 2xx answer delivers it; a
//! retriable subscription is sent a failed event again up to [`RETRIES`] times, 1, 2 and 4 s
//! apart. The reactor's checkpoint moves past an event only once it was sent to every
//! subscriber, so a node stopping mid-way sends it again from the next node: a subscriber may
//! see an event twice (its `id` tells), never miss one that it answered.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use vigil_commands::CommandBus;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::events::subscription::Subscription;
use vigil_domain::events::{PUBLISHING_KINDS, published};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_projections::runner::Progresses;
use vigil_projections::store::ReadStore;

use crate::followed::Followed;
use crate::runner::{Reactor, Retry};

/// How often a retriable subscription is sent an event again after a failure.
pub const RETRIES: u32 = 3;
/// How long a subscriber may take to answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

static KINDS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut kinds = PUBLISHING_KINDS.to_vec();
    kinds.push(Subscription::KIND);
    kinds
});

/// The URL a service name reaches: the name itself when it is an `http(s)` URL, else
/// `http://<name>` (a host name, as Extra Horizon's own services are named).
pub fn service_url(name: &str) -> String {
    if name.starts_with("http://") || name.starts_with("https://") {
        name.to_owned()
    } else {
        format!("http://{name}")
    }
}

/// The event sender, a [`Reactor`].
pub struct Subscribers {
    bus: Arc<CommandBus>,
    store: ReadStore,
    progresses: Progresses,
    subscriptions: Followed<Subscription>,
    http: reqwest::Client,
}

impl Subscribers {
    pub fn new(bus: Arc<CommandBus>, store: ReadStore, progresses: Progresses) -> Self {
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vigil/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self {
            bus,
            store,
            progresses,
            subscriptions: Followed::new(|subscription| subscription.created.is_some()),
            http,
        }
    }

    /// Sends `event` to subscription `id`'s service, again if it failed and may be retried.
    async fn send(&self, id: Id, subscription: &Subscription, event: &Value) {
        let Some(created) = &subscription.created else {
            return;
        };
        let url = service_url(&created.service_name);
        let attempts = if created.retriable { 1 + RETRIES } else { 1 };
        for attempt in 0..attempts {
            let failure = match self.http.post(&url).json(event).send().await {
                Ok(answer) if answer.status().is_success() => return,
                Ok(answer) => format!("answered {}", answer.status()),
                Err(error) => error.to_string(),
            };
            if attempt + 1 == attempts {
                tracing::warn!(
                    subscription = %id,
                    event = %event["id"],
                    failure,
                    "an event was not delivered to a subscriber"
                );
                return;
            }
            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
        }
    }
}

impl Reactor for Subscribers {
    fn name(&self) -> &'static str {
        "subscriptions"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(KINDS.as_slice())
    }

    fn resume(&mut self, checkpoint: u64) -> BoxFuture<'_, Result<u64, Retry>> {
        Box::pin(async move {
            let store = &self.store;
            self.subscriptions
                .gather(&self.bus, &self.progresses, checkpoint, async || {
                    vigil_projections::events::subscriptions::ids(store).await
                })
                .await
        })
    }

    fn react<'a>(&'a mut self, recorded: &'a Recorded) -> BoxFuture<'a, Result<(), Retry>> {
        Box::pin(async move {
            if self.subscriptions.fold(recorded) {
                return Ok(());
            }
            if self.subscriptions.items.is_empty() {
                return Ok(());
            }
            for event in published(&recorded.commit) {
                let json = event.json();
                for (id, subscription) in &self.subscriptions.items {
                    if subscription.wants(&event.event_type) {
                        self.send(*id, subscription, &json).await;
                    }
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_name_is_its_url_or_a_host_name() {
        assert_eq!(
            service_url("https://hooks.example.com/events"),
            "https://hooks.example.com/events"
        );
        assert_eq!(service_url("dispatchers"), "http://dispatchers");
    }
}
