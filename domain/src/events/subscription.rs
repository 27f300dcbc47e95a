//! Event subscriptions (`/events/v1/subscriptions`): a service, named by the URL it is reached at
//! and its version, that is sent every event of the types it lists; a retriable one is sent an
//! event again when sending fails.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;

use super::TYPE_CHARS;

/// The longest service name (a URL).
pub const NAME_CHARS: usize = 2048;
/// The most event types one subscription lists.
pub const EVENT_TYPES: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ServiceVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SubscriptionCreated {
    pub service_name: String,
    pub service_version: ServiceVersion,
    pub event_types: Vec<String>,
    pub retriable: bool,
}

events! {
    pub enum SubscriptionEvent {
        Created(SubscriptionCreated) = "subscription.created",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionCommand {
    Create(SubscriptionCreated),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("this subscription exists already")]
    AlreadyExists,
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for SubscriptionError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// A subscription, once created.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Subscription {
    pub created: Option<SubscriptionCreated>,
}

impl Subscription {
    /// Whether the subscription wants events of `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.created
            .as_ref()
            .is_some_and(|created| created.event_types.iter().any(|t| t == event_type))
    }
}

impl Aggregate for Subscription {
    const KIND: &'static str = "subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = SubscriptionError;

    fn authorize(&self, _: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        ctx.actor
            .require("CREATE_SUBSCRIPTIONS", SubscriptionError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let SubscriptionCommand::Create(created) = command;
        if self.created.is_some() {
            return Err(SubscriptionError::AlreadyExists);
        }
        let name = &created.service_name;
        if name.trim().is_empty()
            || name.chars().count() > NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(SubscriptionError::Invalid(format!(
                "a service's name is the URL it is reached at, 1 to {NAME_CHARS} characters"
            )));
        }
        if created.event_types.is_empty() || created.event_types.len() > EVENT_TYPES {
            return Err(SubscriptionError::Invalid(format!(
                "a subscription lists 1 to {EVENT_TYPES} event types"
            )));
        }
        if let Some(bad) = created.event_types.iter().find(|t| {
            t.is_empty() || t.chars().count() > TYPE_CHARS || t.chars().any(char::is_control)
        }) {
            return Err(SubscriptionError::Invalid(format!(
                "the event type {bad:?} is not 1 to {TYPE_CHARS} characters without control characters"
            )));
        }
        Ok(vec![SubscriptionEvent::Created(created.clone())])
    }

    fn apply(&mut self, event: &Self::Event) {
        let SubscriptionEvent::Created(created) = event;
        self.created = Some(created.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn create(name: &str, event_types: &[&str]) -> SubscriptionCommand {
        SubscriptionCommand::Create(SubscriptionCreated {
            service_name: name.into(),
            service_version: ServiceVersion {
                major: 1,
                minor: 0,
                patch: 0,
            },
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            retriable: true,
        })
    }

    #[test]
    fn a_subscription_is_created_once_and_wants_its_types() {
        let created = given::<Subscription>(&[])
            .when(create(
                "https://hooks.example.com/events",
                &["user_created"],
            ))
            .events();
        let mut subscription = Subscription::default();
        for event in &created {
            subscription.apply(event);
        }
        assert!(subscription.wants("user_created"));
        assert!(!subscription.wants("user_deleted"));
        given::<Subscription>(&created)
            .when(create("https://hooks.example.com/events", &["x"]))
            .then_err(SubscriptionError::AlreadyExists);
    }

    #[test]
    fn what_is_not_a_subscription_is_refused() {
        for command in [
            create("", &["x"]),
            create("https://a", &[]),
            create("https://a", &[""]),
            create("https://a\n", &["x"]),
        ] {
            assert!(matches!(
                given::<Subscription>(&[]).when(command).events_or_error(),
                Err(SubscriptionError::Invalid(_))
            ));
        }
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Subscription>(&[])
            .by(nobody)
            .when(create("https://a", &["x"]))
            .then_err(SubscriptionError::NoPermission("CREATE_SUBSCRIPTIONS"));
    }
}
