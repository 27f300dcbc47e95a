//! The dispatchers service (`/dispatchers/v1`): for every event of a type, run actions — create a
//! task, or send a template mail.
//!
//! A dispatcher is an aggregate holding its event type and actions. The scheduler follows the
//! events (see [`crate::events::published`]) and runs each matching dispatcher's actions once per
//! event: a task action's task has an id derived from the event, the dispatcher and the action.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::json::JsonOf;
use crate::value::Timestamp;

/// The longest event type, name or description of a dispatcher or action.
pub const TEXT_CHARS: usize = 1000;
/// The most actions of a dispatcher.
pub const ACTIONS: usize = 100;

/// A task action: a task of a function, with the action's data and the event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TaskAction {
    pub function_name: String,
    pub data: JsonOf<Map<String, Value>>,
    pub tags: Vec<String>,
    pub start_at: Option<Timestamp>,
}

/// A mail action: a template mail to fixed recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct MailAction {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub template_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum ActionKind {
    Task(TaskAction),
    Mail(MailAction),
}

impl ActionKind {
    pub fn wire_name(&self) -> &'static str {
        match self {
            Self::Task(_) => "task",
            Self::Mail(_) => "mail",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Action {
    pub id: Id,
    pub name: Option<String>,
    pub description: Option<String>,
    pub kind: ActionKind,
}

/// A dispatcher's own attributes, all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DispatcherAttributes {
    pub event_type: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DispatcherCreated {
    pub attributes: DispatcherAttributes,
    pub actions: Vec<Action>,
}

/// An action added, changed or removed: its id, and every action of the dispatcher now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ActionsChanged {
    pub id: Id,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct DispatcherDeleted {}

events! {
    pub enum DispatcherEvent {
        Created(DispatcherCreated) = "dispatcher.created",
        Updated(DispatcherAttributes) = "dispatcher.updated",
        ActionAdded(ActionsChanged) = "dispatcher.action_added",
        ActionUpdated(ActionsChanged) = "dispatcher.action_updated",
        ActionRemoved(ActionsChanged) = "dispatcher.action_removed",
        Deleted(DispatcherDeleted) = "dispatcher.deleted",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum DispatcherCommand {
    Create(DispatcherCreated),
    /// The attributes, all of them now.
    Update(DispatcherAttributes),
    AddAction(Action),
    /// The action with this id, all of it now (its type stays).
    UpdateAction(Action),
    RemoveAction(Id),
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatcherError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("no dispatcher has this id")]
    Unknown,
    #[error("the dispatcher has no action with this id")]
    UnknownAction,
    #[error("this dispatcher exists already")]
    AlreadyExists,
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for DispatcherError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::Unknown | Self::UnknownAction => ExhCode::ResourceUnknown,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// A dispatcher while it exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dispatcher {
    pub attributes: Option<DispatcherAttributes>,
    pub actions: Vec<Action>,
}

fn invalid(message: impl Into<String>) -> DispatcherError {
    DispatcherError::Invalid(message.into())
}

fn check_text(what: &str, text: &str) -> Result<(), DispatcherError> {
    if text.chars().count() > TEXT_CHARS || text.chars().any(char::is_control) {
        return Err(invalid(format!(
            "`{what}` is at most {TEXT_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

fn check_attributes(attributes: &DispatcherAttributes) -> Result<(), DispatcherError> {
    if attributes.event_type.is_empty() {
        return Err(invalid("a dispatcher needs an `eventType`"));
    }
    check_text("eventType", &attributes.event_type)?;
    for (what, text) in [
        ("name", &attributes.name),
        ("description", &attributes.description),
    ] {
        if let Some(text) = text {
            check_text(what, text)?;
        }
    }
    if attributes.tags.len() > 100 || attributes.tags.iter().any(|t| t.chars().count() > 200) {
        return Err(invalid(
            "a dispatcher has at most 100 tags of at most 200 characters",
        ));
    }
    Ok(())
}

fn check_actions(actions: &[Action]) -> Result<(), DispatcherError> {
    if actions.len() > ACTIONS {
        return Err(invalid(format!(
            "a dispatcher has at most {ACTIONS} actions"
        )));
    }
    let mut names = std::collections::BTreeSet::new();
    for action in actions {
        if let Some(name) = &action.name
            && !names.insert(name.as_str())
        {
            return Err(invalid(format!("two actions are named `{name}`")));
        }
        for (what, text) in [("name", &action.name), ("description", &action.description)] {
            if let Some(text) = text {
                check_text(what, text)?;
            }
        }
        match &action.kind {
            ActionKind::Task(task) => {
                if crate::tasks::function::stream(&task.function_name).is_err() {
                    return Err(invalid(
                        "a task action's `functionName` is a function's name",
                    ));
                }
                let bytes = serde_json::to_vec(&task.data.0).map_or(usize::MAX, |j| j.len());
                if bytes > crate::tasks::task::DATA_BYTES {
                    return Err(invalid("a task action's data is at most 250 KB of JSON"));
                }
            }
            ActionKind::Mail(mail) => {
                let recipients = mail.to.iter().chain(&mail.cc).chain(&mail.bcc);
                if recipients.clone().count() > 100 {
                    return Err(invalid("a mail action has at most 100 recipients"));
                }
                for recipient in recipients {
                    crate::value::Email::parse(recipient)
                        .map_err(|_| invalid(format!("`{recipient}` is not an email address")))?;
                }
            }
        }
    }
    Ok(())
}

impl Aggregate for Dispatcher {
    const KIND: &'static str = "dispatcher";
    type Command = DispatcherCommand;
    type Event = DispatcherEvent;
    type Error = DispatcherError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let permission = match command {
            DispatcherCommand::Create(_) => "CREATE_DISPATCHERS",
            DispatcherCommand::Delete => "DELETE_DISPATCHERS",
            _ => "UPDATE_DISPATCHERS",
        };
        ctx.actor.require(permission, DispatcherError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if let DispatcherCommand::Create(created) = command {
            if self.attributes.is_some() {
                return Err(DispatcherError::AlreadyExists);
            }
            check_attributes(&created.attributes)?;
            check_actions(&created.actions)?;
            return Ok(vec![DispatcherEvent::Created(created.clone())]);
        }
        if self.attributes.is_none() {
            return Err(DispatcherError::Unknown);
        }
        let position = |id: Id| self.actions.iter().position(|action| action.id == id);
        let with = |id: Id, change: &dyn Fn(&mut Vec<Action>)| {
            let mut actions = self.actions.clone();
            change(&mut actions);
            check_actions(&actions)?;
            Ok::<_, DispatcherError>(ActionsChanged { id, actions })
        };
        Ok(match command {
            DispatcherCommand::Create(_) => vec![],
            DispatcherCommand::Update(attributes) => {
                check_attributes(attributes)?;
                vec![DispatcherEvent::Updated(attributes.clone())]
            }
            DispatcherCommand::AddAction(action) => {
                if position(action.id).is_some() {
                    return Err(DispatcherError::AlreadyExists);
                }
                vec![DispatcherEvent::ActionAdded(with(action.id, &|actions| {
                    actions.push(action.clone());
                })?)]
            }
            DispatcherCommand::UpdateAction(action) => {
                let at = position(action.id).ok_or(DispatcherError::UnknownAction)?;
                if self.actions[at].kind.wire_name() != action.kind.wire_name() {
                    return Err(invalid("an action keeps its type"));
                }
                vec![DispatcherEvent::ActionUpdated(with(
                    action.id,
                    &|actions| {
                        actions[at] = action.clone();
                    },
                )?)]
            }
            DispatcherCommand::RemoveAction(id) => {
                position(*id).ok_or(DispatcherError::UnknownAction)?;
                vec![DispatcherEvent::ActionRemoved(with(*id, &|actions| {
                    actions.retain(|action| action.id != *id);
                })?)]
            }
            DispatcherCommand::Delete => vec![DispatcherEvent::Deleted(DispatcherDeleted {})],
        })
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            DispatcherEvent::Created(e) => {
                self.attributes = Some(e.attributes.clone());
                self.actions = e.actions.clone();
            }
            DispatcherEvent::Updated(e) => self.attributes = Some(e.clone()),
            DispatcherEvent::ActionAdded(e)
            | DispatcherEvent::ActionUpdated(e)
            | DispatcherEvent::ActionRemoved(e) => self.actions = e.actions.clone(),
            DispatcherEvent::Deleted(_) => {
                self.attributes = None;
                self.actions.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn task_action(n: u8, name: &str) -> Action {
        Action {
            id: id(n),
            name: Some(name.into()),
            description: None,
            kind: ActionKind::Task(TaskAction {
                function_name: "notify".into(),
                data: JsonOf(Map::new()),
                tags: vec![],
                start_at: None,
            }),
        }
    }

    fn created() -> DispatcherEvent {
        DispatcherEvent::Created(DispatcherCreated {
            attributes: DispatcherAttributes {
                event_type: "measurement_analyzed".into(),
                name: Some("on analysis".into()),
                description: None,
                tags: vec![],
            },
            actions: vec![task_action(1, "a")],
        })
    }

    #[test]
    fn actions_are_added_updated_and_removed_by_id() {
        let added = given::<Dispatcher>(&[created()])
            .when(DispatcherCommand::AddAction(task_action(2, "b")))
            .events();
        let mut history = vec![created()];
        history.extend(added);
        given::<Dispatcher>(&history)
            .when(DispatcherCommand::AddAction(task_action(3, "b")))
            .then_err(invalid("two actions are named `b`"));
        given::<Dispatcher>(&history)
            .when(DispatcherCommand::UpdateAction(task_action(9, "z")))
            .then_err(DispatcherError::UnknownAction);
        let mail = Action {
            kind: ActionKind::Mail(MailAction {
                to: vec!["a@example.com".into()],
                cc: vec![],
                bcc: vec![],
                template_id: None,
            }),
            ..task_action(2, "b")
        };
        given::<Dispatcher>(&history)
            .when(DispatcherCommand::UpdateAction(mail))
            .then_err(invalid("an action keeps its type"));
        let removed = given::<Dispatcher>(&history)
            .when(DispatcherCommand::RemoveAction(id(2)))
            .events();
        assert_eq!(Dispatcher::fold(&history).actions.len(), 2);
        history.extend(removed);
        assert_eq!(Dispatcher::fold(&history).actions, [task_action(1, "a")]);
    }

    #[test]
    fn a_deleted_dispatcher_is_unknown() {
        let deleted = DispatcherEvent::Deleted(DispatcherDeleted {});
        given::<Dispatcher>(&[created(), deleted])
            .when(DispatcherCommand::RemoveAction(id(1)))
            .then_err(DispatcherError::Unknown);
    }

    #[test]
    fn bad_recipients_and_missing_event_types_are_refused() {
        let mail = Action {
            id: id(5),
            name: None,
            description: None,
            kind: ActionKind::Mail(MailAction {
                to: vec!["not an address".into()],
                cc: vec![],
                bcc: vec![],
                template_id: None,
            }),
        };
        assert!(
            given::<Dispatcher>(&[created()])
                .when(DispatcherCommand::AddAction(mail))
                .events_or_error()
                .is_err()
        );
        assert!(
            given::<Dispatcher>(&[created()])
                .when(DispatcherCommand::Update(DispatcherAttributes {
                    event_type: String::new(),
                    name: None,
                    description: None,
                    tags: vec![],
                }))
                .events_or_error()
                .is_err()
        );
    }

    #[test]
    fn each_command_needs_its_permission() {
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Dispatcher>(&[created()])
            .by(nobody)
            .when(DispatcherCommand::Delete)
            .then_err(DispatcherError::NoPermission("DELETE_DISPATCHERS"));
    }
}
