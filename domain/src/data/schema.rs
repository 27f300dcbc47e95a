//! Data-service schemas: the configuration documents are checked and run against. One stream per
//! schema (`schema-<id>`). Every change is an event carrying the new value of what it changed (a
//! property change carries the whole new property tree, a status change all statuses), so the
//! configuration at any point of the log is one fold away and its history is part of the audit
//! trail.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use vigil_schemas::ConfigurationError;
use vigil_schemas::definition::{Definition, Settings, Write};
use vigil_schemas::index::Index;
use vigil_schemas::workflow::{CreationTransition, Statuses, Transition};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::json::JsonOf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SchemaCreated {
    pub name: String,
    pub description: String,
    /// The whole configuration (boxed: it is by far the largest event payload).
    #[cfg_attr(test, proptest(value = "JsonOf(Box::default())"))]
    pub definition: JsonOf<Box<Definition>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SchemaUpdated {
    pub name: Option<String>,
    pub description: Option<String>,
    /// The settings that changed, by wire name, with their new values.
    #[cfg_attr(test, proptest(value = "JsonOf(Map::new())"))]
    pub settings: JsonOf<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SchemaToggled {}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct SchemaDeleted {}

/// A property at `path` was added, replaced or removed; `properties` is the whole new tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct PropertyChanged {
    pub path: String,
    #[cfg_attr(test, proptest(value = "JsonOf(Map::new())"))]
    pub properties: JsonOf<Map<String, Value>>,
}

/// The status `name` was added, changed or removed; `statuses` are all of them now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StatusChanged {
    pub name: String,
    #[cfg_attr(test, proptest(value = "JsonOf(Definition::default().statuses)"))]
    pub statuses: JsonOf<Statuses>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct CreationTransitionSet {
    #[cfg_attr(
        test,
        proptest(value = "JsonOf(Definition::default().creation_transition)")
    )]
    pub creation_transition: JsonOf<CreationTransition>,
}

/// The transition `id` was added, replaced or removed; `transitions` are all of them now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TransitionChanged {
    pub id: Id,
    #[cfg_attr(test, proptest(value = "JsonOf(Vec::new())"))]
    pub transitions: JsonOf<Vec<Transition>>,
}

/// The index `id` was added or removed; `indexes` are all of them now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct IndexChanged {
    pub id: Id,
    #[cfg_attr(test, proptest(value = "JsonOf(Vec::new())"))]
    pub indexes: JsonOf<Vec<Index>>,
}

events! {
    pub enum SchemaEvent {
        Created(SchemaCreated) = "schema.created",
        Updated(SchemaUpdated) = "schema.updated",
        Disabled(SchemaToggled) = "schema.disabled",
        Enabled(SchemaToggled) = "schema.enabled",
        Deleted(SchemaDeleted) = "schema.deleted",
        PropertyAdded(PropertyChanged) = "schema.property_added",
        PropertyUpdated(PropertyChanged) = "schema.property_updated",
        PropertyRemoved(PropertyChanged) = "schema.property_removed",
        StatusAdded(StatusChanged) = "schema.status_added",
        StatusUpdated(StatusChanged) = "schema.status_updated",
        StatusRemoved(StatusChanged) = "schema.status_removed",
        CreationTransitionSet(CreationTransitionSet) = "schema.creation_transition_set",
        TransitionAdded(TransitionChanged) = "schema.transition_added",
        TransitionUpdated(TransitionChanged) = "schema.transition_updated",
        TransitionRemoved(TransitionChanged) = "schema.transition_removed",
        IndexAdded(IndexChanged) = "schema.index_added",
        IndexRemoved(IndexChanged) = "schema.index_removed",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SchemaCommand {
    Create {
        name: String,
        description: String,
        /// Settings by wire name (`readMode`, `defaultLimit`, ...), as given.
        settings: Map<String, Value>,
    },
    Update {
        name: Option<String>,
        description: Option<String>,
        settings: Map<String, Value>,
    },
    Disable,
    Enable,
    /// Only a disabled schema.
    Delete,
    WriteProperty {
        path: String,
        configuration: Value,
        write: Write,
    },
    RemoveProperty {
        path: String,
    },
    WriteStatus {
        name: String,
        data: Map<String, Value>,
        write: Write,
    },
    RemoveStatus {
        name: String,
    },
    SetCreationTransition(Value),
    WriteTransition {
        id: Id,
        transition: Value,
        write: Write,
    },
    RemoveTransition {
        id: Id,
    },
    AddIndex {
        id: Id,
        index: Value,
    },
    RemoveIndex {
        id: Id,
    },
}

impl SchemaCommand {
    /// The permission this command needs.
    pub fn permission(&self) -> &'static str {
        match self {
            Self::Create { .. } => "CREATE_SCHEMAS",
            Self::Delete => "DELETE_SCHEMAS",
            Self::Disable | Self::Enable => "DISABLE_SCHEMAS",
            Self::Update { .. }
            | Self::WriteProperty { .. }
            | Self::RemoveProperty { .. }
            | Self::WriteStatus { .. }
            | Self::RemoveStatus { .. }
            | Self::SetCreationTransition(_)
            | Self::WriteTransition { .. }
            | Self::RemoveTransition { .. }
            | Self::AddIndex { .. }
            | Self::RemoveIndex { .. } => "UPDATE_SCHEMAS",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("this schema already exists")]
    AlreadyExists,
    #[error("schema not found")]
    NotFound,
    #[error("a schema must be disabled before it is deleted")]
    Enabled,
    #[error(transparent)]
    Configuration(#[from] ConfigurationError),
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for SchemaError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists | Self::Configuration(ConfigurationError::Exists(_)) => {
                ExhCode::ResourceAlreadyExists
            }
            Self::NotFound | Self::Configuration(ConfigurationError::Unknown(_)) => {
                ExhCode::ResourceUnknown
            }
            Self::Enabled => ExhCode::IllegalState,
            Self::Configuration(ConfigurationError::Invalid { .. }) => ExhCode::FieldFormat,
            Self::Configuration(ConfigurationError::StatusInUse(_)) => ExhCode::StatusInUse,
            Self::NoPermission(_) => ExhCode::NoPermission,
        }
    }
}

/// How a request names a schema (`/data/v1/{schema}/...`): by id, or else by name (a schema's
/// name never looks like an id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    Id(Id),
    Name(String),
}

impl SchemaRef {
    /// `None` when `text` is neither an id nor a possible schema name.
    pub fn parse(text: &str) -> Option<Self> {
        match text.parse() {
            Ok(id) => Some(Self::Id(id)),
            Err(_) if vigil_schemas::is_schema_name(text) => Some(Self::Name(text.to_owned())),
            Err(_) => None,
        }
    }
}

impl std::fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Name(name) => f.write_str(name),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    pub created: bool,
    pub deleted: bool,
    pub disabled: bool,
    pub name: String,
    pub description: String,
    pub definition: Definition,
}

/// Documents are checked against a definition's compiled validators: one that does not compile
/// (`{"type": "string", "minLength": "x"}`) is refused when configured.
fn compiles(definition: &Definition) -> Result<(), ConfigurationError> {
    vigil_schemas::compiled::CompiledSchema::compile(definition.clone()).map(|_| ())
}

impl Schema {
    fn exists(&self) -> Result<(), SchemaError> {
        if self.created && !self.deleted {
            Ok(())
        } else {
            Err(SchemaError::NotFound)
        }
    }

    /// The new definition after `change`, if it changes anything.
    fn changed(
        &self,
        change: impl FnOnce(&mut Definition) -> Result<(), ConfigurationError>,
    ) -> Result<Option<Definition>, SchemaError> {
        let mut next = self.definition.clone();
        change(&mut next)?;
        if next == self.definition {
            return Ok(None);
        }
        compiles(&next)?;
        Ok(Some(next))
    }
}

impl Aggregate for Schema {
    const KIND: &'static str = "schema";
    type Command = SchemaCommand;
    type Event = SchemaEvent;
    type Error = SchemaError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        ctx.actor
            .require(command.permission(), SchemaError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if let SchemaCommand::Create {
            name,
            description,
            settings,
        } = command
        {
            if self.created {
                return Err(SchemaError::AlreadyExists);
            }
            vigil_schemas::check_name(name)?;
            vigil_schemas::check_description(description)?;
            let mut definition = Definition::default();
            let changes = definition.settings.changes(settings)?;
            definition.settings.apply(&changes);
            return Ok(vec![SchemaEvent::Created(SchemaCreated {
                name: name.clone(),
                description: description.clone(),
                definition: JsonOf(Box::new(definition)),
            })]);
        }
        self.exists()?;
        let event = match command {
            SchemaCommand::Create { .. } => return Err(SchemaError::AlreadyExists),
            SchemaCommand::Update {
                name,
                description,
                settings,
            } => {
                let name = name.clone().filter(|n| *n != self.name);
                if let Some(name) = &name {
                    vigil_schemas::check_name(name)?;
                }
                let description = description.clone().filter(|d| *d != self.description);
                if let Some(description) = &description {
                    vigil_schemas::check_description(description)?;
                }
                let settings = self.definition.settings.changes(settings)?;
                if name.is_none() && description.is_none() && settings.is_empty() {
                    return Ok(vec![]);
                }
                SchemaEvent::Updated(SchemaUpdated {
                    name,
                    description,
                    settings: JsonOf(settings),
                })
            }
            SchemaCommand::Disable if self.disabled => return Ok(vec![]),
            SchemaCommand::Disable => SchemaEvent::Disabled(SchemaToggled {}),
            SchemaCommand::Enable if !self.disabled => return Ok(vec![]),
            SchemaCommand::Enable => SchemaEvent::Enabled(SchemaToggled {}),
            SchemaCommand::Delete if !self.disabled => return Err(SchemaError::Enabled),
            SchemaCommand::Delete => SchemaEvent::Deleted(SchemaDeleted {}),
            SchemaCommand::WriteProperty {
                path,
                configuration,
                write,
            } => {
                let Some(next) = self.changed(|d| d.write_property(path, configuration, *write))?
                else {
                    return Ok(vec![]);
                };
                let change = PropertyChanged {
                    path: path.clone(),
                    properties: JsonOf(next.properties),
                };
                match write {
                    Write::Add => SchemaEvent::PropertyAdded(change),
                    Write::Replace => SchemaEvent::PropertyUpdated(change),
                }
            }
            SchemaCommand::RemoveProperty { path } => {
                let Some(next) = self.changed(|d| d.remove_property(path))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::PropertyRemoved(PropertyChanged {
                    path: path.clone(),
                    properties: JsonOf(next.properties),
                })
            }
            SchemaCommand::WriteStatus { name, data, write } => {
                let Some(next) = self.changed(|d| d.write_status(name, data.clone(), *write))?
                else {
                    return Ok(vec![]);
                };
                let change = StatusChanged {
                    name: name.clone(),
                    statuses: JsonOf(next.statuses),
                };
                match write {
                    Write::Add => SchemaEvent::StatusAdded(change),
                    Write::Replace => SchemaEvent::StatusUpdated(change),
                }
            }
            SchemaCommand::RemoveStatus { name } => {
                let Some(next) = self.changed(|d| d.remove_status(name))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::StatusRemoved(StatusChanged {
                    name: name.clone(),
                    statuses: JsonOf(next.statuses),
                })
            }
            SchemaCommand::SetCreationTransition(value) => {
                let Some(next) = self.changed(|d| d.set_creation_transition(value))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::CreationTransitionSet(CreationTransitionSet {
                    creation_transition: JsonOf(next.creation_transition),
                })
            }
            SchemaCommand::WriteTransition {
                id,
                transition,
                write,
            } => {
                let key = id.to_string();
                let Some(next) = self.changed(|d| d.write_transition(&key, transition, *write))?
                else {
                    return Ok(vec![]);
                };
                let change = TransitionChanged {
                    id: *id,
                    transitions: JsonOf(next.transitions),
                };
                match write {
                    Write::Add => SchemaEvent::TransitionAdded(change),
                    Write::Replace => SchemaEvent::TransitionUpdated(change),
                }
            }
            SchemaCommand::RemoveTransition { id } => {
                let Some(next) = self.changed(|d| d.remove_transition(&id.to_string()))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::TransitionRemoved(TransitionChanged {
                    id: *id,
                    transitions: JsonOf(next.transitions),
                })
            }
            SchemaCommand::AddIndex { id, index } => {
                let Some(next) = self.changed(|d| d.add_index(&id.to_string(), index))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::IndexAdded(IndexChanged {
                    id: *id,
                    indexes: JsonOf(next.indexes),
                })
            }
            SchemaCommand::RemoveIndex { id } => {
                let Some(next) = self.changed(|d| d.remove_index(&id.to_string()))? else {
                    return Ok(vec![]);
                };
                SchemaEvent::IndexRemoved(IndexChanged {
                    id: *id,
                    indexes: JsonOf(next.indexes),
                })
            }
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &Self::Event) {
        let definition = &mut self.definition;
        match event {
            SchemaEvent::Created(e) => {
                self.created = true;
                self.name = e.name.clone();
                self.description = e.description.clone();
                self.definition = (*e.definition.0).clone();
            }
            SchemaEvent::Updated(e) => {
                if let Some(name) = &e.name {
                    self.name = name.clone();
                }
                if let Some(description) = &e.description {
                    self.description = description.clone();
                }
                definition.settings.apply(&e.settings.0);
            }
            SchemaEvent::Disabled(_) => self.disabled = true,
            SchemaEvent::Enabled(_) => self.disabled = false,
            SchemaEvent::Deleted(_) => self.deleted = true,
            SchemaEvent::PropertyAdded(e)
            | SchemaEvent::PropertyUpdated(e)
            | SchemaEvent::PropertyRemoved(e) => definition.properties = e.properties.0.clone(),
            SchemaEvent::StatusAdded(e)
            | SchemaEvent::StatusUpdated(e)
            | SchemaEvent::StatusRemoved(e) => definition.statuses = e.statuses.0.clone(),
            SchemaEvent::CreationTransitionSet(e) => {
                definition.creation_transition = e.creation_transition.0.clone();
            }
            SchemaEvent::TransitionAdded(e)
            | SchemaEvent::TransitionUpdated(e)
            | SchemaEvent::TransitionRemoved(e) => definition.transitions = e.transitions.0.clone(),
            SchemaEvent::IndexAdded(e) | SchemaEvent::IndexRemoved(e) => {
                definition.indexes = e.indexes.0.clone();
            }
        }
    }
}

impl Schema {
    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.definition.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    #[test]
    fn a_schema_is_named_by_id_or_else_by_name() {
        let id_text = id(7).to_string();
        assert_eq!(SchemaRef::parse(&id_text), Some(SchemaRef::Id(id(7))));
        assert_eq!(
            SchemaRef::parse("blood-pressure_2"),
            Some(SchemaRef::Name("blood-pressure_2".into()))
        );
        for neither in ["", "ab", "a b", "x/y", &"n".repeat(51)] {
            assert_eq!(SchemaRef::parse(neither), None, "{neither:?}");
        }
        assert_eq!(SchemaRef::Name("bp".into()).to_string(), "bp");
        assert_eq!(SchemaRef::Id(id(7)).to_string(), id_text);
    }
    use serde_json::json;

    fn holding(permissions: &[&str]) -> Actor {
        let permissions: Permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
        Actor::user(id(9), None, permissions, Via::Http, None)
    }

    fn admin() -> Actor {
        holding(&[
            "CREATE_SCHEMAS",
            "UPDATE_SCHEMAS",
            "DELETE_SCHEMAS",
            "DISABLE_SCHEMAS",
        ])
    }

    fn created() -> SchemaEvent {
        given::<Schema>(&[])
            .by(admin())
            .when(SchemaCommand::Create {
                name: "blood-pressure".into(),
                description: "Measurements".into(),
                settings: Map::new(),
            })
            .events()
            .remove(0)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_schema_is_created_with_the_defaults_and_translated_modes() {
        let events = given::<Schema>(&[])
            .by(admin())
            .when(SchemaCommand::Create {
                name: "notes".into(),
                description: String::new(),
                settings: object(json!({"readMode": "enlistedInLinkedGroups", "defaultLimit": 5})),
            })
            .events();
        let SchemaEvent::Created(created) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            created.definition.json().unwrap()["statuses"],
            json!({"new": {}})
        );
        assert_eq!(
            created.definition.json().unwrap()["readMode"],
            json!(["linkedGroupPatients", "linkedGroupStaff"])
        );
        assert_eq!(created.definition.json().unwrap()["defaultLimit"], json!(5));
        let schema = Schema::fold(&events);
        assert_eq!(schema.settings().default_limit, 5);
    }

    #[test]
    fn names_and_settings_are_checked() {
        for (name, settings) in [
            ("ab", json!({})),
            ("with space", json!({})),
            ("5e9f00000000000000000001", json!({})),
            ("fine", json!({"createMode": "creatorOnly"})),
            ("fine", json!({"unknown": 1})),
        ] {
            let refused = given::<Schema>(&[])
                .by(admin())
                .when(SchemaCommand::Create {
                    name: name.into(),
                    description: String::new(),
                    settings: object(settings),
                })
                .events_or_error();
            assert!(
                matches!(refused, Err(SchemaError::Configuration(_))),
                "{name}: {refused:?}"
            );
        }
    }

    #[test]
    fn each_change_needs_its_permission() {
        let creator = holding(&["CREATE_SCHEMAS"]);
        given::<Schema>(&[created()])
            .by(creator.clone())
            .when(SchemaCommand::Disable)
            .then_err(SchemaError::NoPermission("DISABLE_SCHEMAS"));
        given::<Schema>(&[created()])
            .by(creator)
            .when(SchemaCommand::RemoveStatus { name: "new".into() })
            .then_err(SchemaError::NoPermission("UPDATE_SCHEMAS"));
    }

    #[test]
    fn only_a_disabled_schema_is_deleted() {
        given::<Schema>(&[created()])
            .by(admin())
            .when(SchemaCommand::Delete)
            .then_err(SchemaError::Enabled);
        let disabled = SchemaEvent::Disabled(SchemaToggled {});
        given::<Schema>(&[created(), disabled.clone()])
            .by(admin())
            .when(SchemaCommand::Delete)
            .then(&[SchemaEvent::Deleted(SchemaDeleted {})]);
        given::<Schema>(&[created(), disabled.clone()])
            .by(admin())
            .when(SchemaCommand::Disable)
            .then(&[]);
        given::<Schema>(&[created(), disabled, SchemaEvent::Deleted(SchemaDeleted {})])
            .by(admin())
            .when(SchemaCommand::Enable)
            .then_err(SchemaError::NotFound);
    }

    #[test]
    fn changes_carry_the_new_section_and_fold_back() {
        let mut history = vec![created()];
        let steps = [
            SchemaCommand::WriteProperty {
                path: "systolic".into(),
                configuration: json!({"type": "number"}),
                write: Write::Add,
            },
            SchemaCommand::WriteStatus {
                name: "analyzed".into(),
                data: object(json!({"label": "Analyzed"})),
                write: Write::Add,
            },
            SchemaCommand::WriteTransition {
                id: id(1),
                transition: json!({"name": "analyze", "type": "automatic", "fromStatuses": ["new"], "toStatus": "analyzed"}),
                write: Write::Add,
            },
            SchemaCommand::AddIndex {
                id: id(2),
                index: json!({"fields": [{"name": "data.systolic", "type": "desc"}]}),
            },
            SchemaCommand::Update {
                name: Some("bp-v2".into()),
                description: None,
                settings: object(json!({"deleteMode": "linkedUsersOnly"})),
            },
        ];
        for step in steps {
            let events = given::<Schema>(&history).by(admin()).when(step).events();
            assert_eq!(events.len(), 1);
            history.extend(events);
        }
        let schema = Schema::fold(&history);
        assert_eq!(schema.name, "bp-v2");
        assert_eq!(
            schema.definition.properties["systolic"],
            json!({"type": "number"})
        );
        assert_eq!(schema.definition.statuses["analyzed"]["label"], "Analyzed");
        assert_eq!(schema.definition.transitions[0].id, id(1).to_string());
        assert_eq!(schema.definition.indexes[0].name, "data.systolic_-1");
        assert!(
            schema
                .settings()
                .delete_mode
                .grants(vigil_schemas::access::Relation::LinkedUsers)
        );
        assert_eq!(
            given::<Schema>(&history)
                .by(admin())
                .when(SchemaCommand::RemoveStatus {
                    name: "analyzed".into()
                })
                .events_or_error(),
            Err(SchemaError::Configuration(ConfigurationError::StatusInUse(
                "analyzed".into()
            )))
        );
        given::<Schema>(&history)
            .by(admin())
            .when(SchemaCommand::WriteProperty {
                path: "systolic".into(),
                configuration: json!({"type": "number"}),
                write: Write::Replace,
            })
            .then(&[]);
        // A configuration documents could not be checked against is refused when configured.
        let refused = given::<Schema>(&history)
            .by(admin())
            .when(SchemaCommand::WriteProperty {
                path: "label".into(),
                configuration: json!({"type": "string", "minLength": "x"}),
                write: Write::Add,
            })
            .events_or_error();
        assert!(
            matches!(
                refused,
                Err(SchemaError::Configuration(
                    ConfigurationError::Invalid { .. }
                ))
            ),
            "{refused:?}"
        );
    }
}
