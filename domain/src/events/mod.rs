//! The event service (`/events/v1`): custom events published by clients and functions, and the
//! system events Extra Horizon's services emit, which Vigil derives from the log.
//!
//! A custom event is an aggregate of its own ([`CustomEvent`], one stream per event). A system
//! event is not stored again: [`published`] reads it from the commit that caused it (a user
//! registered is `user_created`), under an id derived from that commit, so every reader (the
//! events read model, the dispatchers) sees the same event with the same id. `task_failed` needs
//! what the failing commit does not hold (the function's name), so the task queue publishes it as
//! a custom event under an id derived from the task.

pub mod subscription;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::aggregate::{Aggregate, Ctx};
use crate::commit::Commit;
use crate::error::{DomainError, ExhCode};
use crate::event::{Event, UserEvent, events};
use crate::id::Id;
use crate::json::JsonOf;
use crate::value::Timestamp;

/// The most bytes of an event's content as JSON.
pub const CONTENT_BYTES: usize = 250 * 1024;
/// The longest event type.
pub const TYPE_CHARS: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct EventPublished {
    pub event_type: String,
    pub content: JsonOf<Map<String, Value>>,
}

events! {
    pub enum CustomEventEvent {
        Published(EventPublished) = "event.published",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CustomEventCommand {
    Publish(EventPublished),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("this event was published already")]
    AlreadyPublished,
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for EventError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::AlreadyPublished => ExhCode::ResourceAlreadyExists,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// A custom event, once published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomEvent {
    pub published: Option<EventPublished>,
}

impl Aggregate for CustomEvent {
    const KIND: &'static str = "event";
    type Command = CustomEventCommand;
    type Event = CustomEventEvent;
    type Error = EventError;

    fn authorize(&self, _: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        ctx.actor.require("CREATE_EVENTS", EventError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        let CustomEventCommand::Publish(published) = command;
        if self.published.is_some() {
            return Err(EventError::AlreadyPublished);
        }
        let kind = &published.event_type;
        if kind.is_empty()
            || kind.chars().count() > TYPE_CHARS
            || kind.chars().any(char::is_control)
        {
            return Err(EventError::Invalid(format!(
                "an event's type is 1 to {TYPE_CHARS} characters without control characters"
            )));
        }
        let bytes = serde_json::to_vec(&published.content.0).map_or(usize::MAX, |j| j.len());
        if bytes > CONTENT_BYTES {
            return Err(EventError::Invalid(format!(
                "an event's content is at most {CONTENT_BYTES} bytes of JSON; this is {bytes}"
            )));
        }
        Ok(vec![CustomEventEvent::Published(published.clone())])
    }

    fn apply(&mut self, event: &Self::Event) {
        let CustomEventEvent::Published(published) = event;
        self.published = Some(published.clone());
    }
}

/// An event as the event service shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub id: Id,
    pub event_type: String,
    pub content: Map<String, Value>,
    pub at: Timestamp,
}

impl Published {
    /// The event as the event service shows it (snake_case, epoch milliseconds).
    pub fn json(&self) -> Value {
        json!({
            "id": self.id.to_string(),
            "type": self.event_type,
            "content": self.content,
            "creation_timestamp": self.at.millis(),
            "update_timestamp": self.at.millis(),
        })
    }
}

/// The stream kinds whose commits publish events.
pub const PUBLISHING_KINDS: &[&str] = &[CustomEvent::KIND, crate::users::user::User::KIND];

/// The events `commit` publishes: its custom event, or the system events of its changes.
pub fn published(commit: &Commit) -> Vec<Published> {
    let Some(subject) = commit.stream.id() else {
        return Vec::new();
    };
    commit
        .events
        .iter()
        .enumerate()
        .filter_map(|(index, event)| {
            let (event_type, content) = match event {
                Event::CustomEvent(CustomEventEvent::Published(published)) => {
                    return Some(Published {
                        id: subject,
                        event_type: published.event_type.clone(),
                        content: published.content.0.clone(),
                        at: commit.recorded_at,
                    });
                }
                Event::User(UserEvent::Registered(_)) => ("user_created", json!({"id": subject})),
                Event::User(UserEvent::Deleted(_)) => ("user_deleted", json!({"id": subject})),
                Event::User(UserEvent::PatientEnlisted(e)) => (
                    "patient_enlistment_added",
                    json!({"user_id": subject, "group_id": e.group_id}),
                ),
                Event::User(UserEvent::PatientRemoved(e)) => (
                    "patient_enlistment_removed",
                    json!({"user_id": subject, "group_id": e.group_id}),
                ),
                Event::User(UserEvent::PasswordReset(_)) => {
                    ("password_reset_completed", json!({"user_id": subject}))
                }
                Event::User(UserEvent::PasswordChanged(_)) => {
                    ("password_update_completed", json!({"user_id": subject}))
                }
                Event::User(UserEvent::Activated(_)) => {
                    ("user_activation_completed", json!({"user_id": subject}))
                }
                _ => return None,
            };
            let seed = format!("{}@{}/{index}", commit.stream, commit.version);
            Some(Published {
                id: Id::derived(commit.recorded_at, seed.as_bytes()),
                event_type: event_type.to_owned(),
                content: match content {
                    Value::Object(content) => content,
                    _ => Map::new(),
                },
                at: commit.recorded_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::commit::{CommandMeta, Commit};
    use crate::id::StreamId;
    use crate::permission::Permissions;

    fn publish(event_type: &str) -> CustomEventCommand {
        CustomEventCommand::Publish(EventPublished {
            event_type: event_type.into(),
            content: JsonOf(Map::new()),
        })
    }

    #[test]
    fn an_event_is_published_once_with_a_sound_type() {
        let published = given::<CustomEvent>(&[])
            .when(publish("measurement_analyzed"))
            .events();
        given::<CustomEvent>(&published)
            .when(publish("again"))
            .then_err(EventError::AlreadyPublished);
        assert!(matches!(
            given::<CustomEvent>(&[])
                .when(publish(""))
                .events_or_error(),
            Err(EventError::Invalid(_))
        ));
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<CustomEvent>(&[])
            .by(nobody)
            .when(publish("x"))
            .then_err(EventError::NoPermission("CREATE_EVENTS"));
    }

    fn commit(stream: StreamId, events: Vec<Event>) -> Commit {
        let meta = CommandMeta {
            command_id: "c".into(),
            correlation_id: String::new(),
            causation_id: None,
            reason: None,
            actor: Actor::system(Via::Cli),
        };
        Commit::next(stream, None, &meta, Timestamp(1_700_000_000_000), events)
    }

    #[test]
    fn user_changes_publish_system_events_under_stable_ids() {
        let user = StreamId::of("user", id(4));
        let enlisted = commit(
            user,
            vec![
                UserEvent::PatientEnlisted(crate::users::user::PatientEnlisted {
                    group_id: id(7),
                    expires_at: None,
                })
                .into(),
            ],
        );
        let events = published(&enlisted);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event_type, "patient_enlistment_added");
        assert_eq!(
            Value::Object(events[0].content.clone()),
            json!({"user_id": id(4), "group_id": id(7)})
        );
        assert_eq!(published(&enlisted)[0].id, events[0].id);
    }

    #[test]
    fn a_custom_event_is_its_own_stream() {
        let stream = StreamId::of(CustomEvent::KIND, id(9));
        let events = published(&commit(
            stream,
            vec![
                CustomEventEvent::Published(EventPublished {
                    event_type: "t".into(),
                    content: JsonOf(Map::new()),
                })
                .into(),
            ],
        ));
        assert_eq!(events[0].id, id(9));
        assert_eq!(events[0].event_type, "t");
    }
}
