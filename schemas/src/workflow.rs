//! Statuses and the transitions between them: their conditions, actions and after-actions, as
//! Extra Horizon configures them (`type`-tagged objects, camelCase fields).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ConfigurationError;
use crate::property::{LONGEST_PROPERTY_NAME, to_json_schema};

/// The statuses of a schema, each with its free-form string data.
pub type Statuses = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum TransitionType {
    /// Run on request (`POST …/transition`), or at creation.
    Manual,
    /// Run by the service when the document reaches one of its `fromStatuses`.
    Automatic,
}

/// What the initiator must be to a user named in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UserRelation {
    IsStaffOfTargetPatient,
}

/// What the initiator must be in a group named in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupRelation {
    Staff,
    Patient,
}

/// A condition a transition checks before it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Condition {
    /// The transition's input (the request `data`) matches a type configuration.
    Input { configuration: Value },
    /// The whole document (`{data: …, status: …}`) matches a type configuration.
    Document { configuration: Value },
    InitiatorHasRelationToUserInData {
        user_id_field: String,
        relation: UserRelation,
    },
    InitiatorHasRelationToGroupInData {
        group_id_field: String,
        relation: GroupRelation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        required_permission: Option<String>,
    },
}

/// An action run inside a transition. Field paths are rooted at the document's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Action {
    Set {
        field: String,
        value: Value,
    },
    Unset {
        /// The SDK's types call it `field`; Extra Horizon's documentation `fields`.
        #[serde(alias = "field")]
        fields: Vec<String>,
    },
    AddItems {
        field: String,
        values: Vec<Value>,
    },
    RemoveItems {
        field: String,
        values: Vec<Value>,
    },
    LinkCreator {},
    LinkUserFromData {
        user_id_field: String,
    },
    LinkEnlistedGroups {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        only_active: Option<bool>,
    },
    LinkGroupFromData {
        group_id_field: String,
    },
    Task(TaskAction),
    Delay {
        /// Seconds.
        time: f64,
    },
    /// Legacy (FibriCheck): kept in configurations, does nothing.
    MeasurementReviewedNotification {},
}

/// A task to create: for the function, with the action's data plus the schema and document ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskAction {
    pub function_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
}

/// An action run once a transition and the automatic ones after it are done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AfterAction {
    Task(TaskAction),
    /// Legacy: kept in configurations, does nothing.
    NotifyAlgoQueueManager {},
}

/// What every transition has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreationTransition {
    #[serde(rename = "type")]
    pub kind: TransitionType,
    pub to_status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_actions: Vec<AfterAction>,
}

impl CreationTransition {
    /// A new schema's: manual, into `new`.
    pub fn initial() -> Self {
        Self {
            kind: TransitionType::Manual,
            to_status: "new".into(),
            conditions: Vec::new(),
            actions: Vec::new(),
            after_actions: Vec::new(),
        }
    }

    /// The creation transition in a request.
    pub fn parse(value: &Value) -> Result<Self, ConfigurationError> {
        parse(value, "creationTransition")
    }

    /// Whether it fits `statuses`, and its conditions and actions are well formed.
    pub fn check(&self, statuses: &Statuses) -> Result<(), ConfigurationError> {
        check_status(statuses, &self.to_status, "toStatus")?;
        check_steps(&self.conditions, &self.actions, &self.after_actions, true)
    }
}

/// A transition between statuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: TransitionType,
    pub from_statuses: Vec<String>,
    pub to_status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_actions: Vec<AfterAction>,
}

impl Transition {
    /// The transition in a request, given the id it gets (an `id` in the request is ignored).
    pub fn parse(id: &str, value: &Value) -> Result<Self, ConfigurationError> {
        let mut object = value
            .as_object()
            .cloned()
            .ok_or_else(|| ConfigurationError::invalid("transition", "an object"))?;
        object.insert("id".into(), Value::String(id.to_owned()));
        parse(&Value::Object(object), "transition")
    }

    pub fn check(&self, statuses: &Statuses) -> Result<(), ConfigurationError> {
        let fits = |name: &str| {
            !name.trim().is_empty()
                && name.chars().count() <= LONGEST_NAME
                && !name.chars().any(char::is_control)
        };
        if !self.name.as_deref().is_none_or(fits) {
            return Err(ConfigurationError::invalid(
                "name",
                format!(
                    "a transition name is 1 to {LONGEST_NAME} characters, not blank and without control characters"
                ),
            ));
        }
        if self.from_statuses.is_empty() {
            return Err(ConfigurationError::invalid(
                "fromStatuses",
                "a transition starts from at least one status",
            ));
        }
        for status in &self.from_statuses {
            check_status(statuses, status, "fromStatuses")?;
        }
        check_status(statuses, &self.to_status, "toStatus")?;
        check_steps(
            &self.conditions,
            &self.actions,
            &self.after_actions,
            self.kind == TransitionType::Manual,
        )
    }

    /// Whether it leaves from or arrives at `status`.
    pub fn uses(&self, status: &str) -> bool {
        self.to_status == status || self.from_statuses.iter().any(|s| s == status)
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    value: &Value,
    what: &str,
) -> Result<T, ConfigurationError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ConfigurationError::invalid(what, e.to_string()))
}

fn check_status(statuses: &Statuses, status: &str, field: &str) -> Result<(), ConfigurationError> {
    if statuses.contains_key(status) {
        Ok(())
    } else {
        Err(ConfigurationError::invalid(
            field,
            format!("`{status}` is not a status of this schema"),
        ))
    }
}

/// The most names a dotted path into the data may have.
pub const LONGEST_PATH: usize = 16;
/// Whether `path` is a dotted path into the data: 1 to [`LONGEST_PATH`] names of 1 to
/// [`LONGEST_PROPERTY_NAME`] characters (the names are properties'), none of them a control
/// character.
pub fn fits_path(path: &str) -> bool {
    let names = path.split('.');
    !path.is_empty()
        && names.clone().count() <= LONGEST_PATH
        && names.clone().all(|name| {
            !name.is_empty()
                && name.chars().count() <= LONGEST_PROPERTY_NAME
                && !name.chars().any(char::is_control)
        })
}

/// The longest name of a transition.
pub const LONGEST_NAME: usize = 100;
/// The longest pause a `delay` action may make: a year, in seconds.
pub const LONGEST_DELAY_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

fn check_field(path: &str, field: &str) -> Result<(), ConfigurationError> {
    if !fits_path(field) {
        return Err(ConfigurationError::invalid(
            path,
            format!(
                "a dotted path into the data, of at most {LONGEST_PATH} names of at most {LONGEST_PROPERTY_NAME} characters, without control characters"
            ),
        ));
    }
    Ok(())
}

fn check_task(task: &TaskAction) -> Result<(), ConfigurationError> {
    let name = &task.function_name;
    if name.trim().is_empty()
        || name.chars().count() > LONGEST_NAME
        || name.chars().any(char::is_control)
    {
        return Err(ConfigurationError::invalid(
            "functionName",
            format!(
                "a task names its function in 1 to {LONGEST_NAME} characters, without control characters"
            ),
        ));
    }
    Ok(())
}

/// Conditions, actions and after-actions are well formed; input conditions only where there is
/// input (creation and manual transitions).
fn check_steps(
    conditions: &[Condition],
    actions: &[Action],
    after_actions: &[AfterAction],
    takes_input: bool,
) -> Result<(), ConfigurationError> {
    for (i, condition) in conditions.iter().enumerate() {
        let at = format!("conditions/{i}");
        match condition {
            Condition::Input { .. } if !takes_input => {
                return Err(ConfigurationError::invalid(
                    &at,
                    "an automatic transition has no input to check",
                ));
            }
            Condition::Input { configuration } | Condition::Document { configuration } => {
                to_json_schema(configuration, &at)?;
            }
            Condition::InitiatorHasRelationToUserInData { user_id_field, .. } => {
                check_field(&at, user_id_field)?;
            }
            Condition::InitiatorHasRelationToGroupInData {
                group_id_field,
                required_permission,
                ..
            } => {
                check_field(&at, group_id_field)?;
                let permission_fits = |permission: &String| {
                    (1..=200).contains(&permission.len())
                        && permission
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_:-".contains(c))
                };
                if !required_permission.as_ref().is_none_or(permission_fits) {
                    return Err(ConfigurationError::invalid(
                        &at,
                        "requiredPermission is a permission name of at most 200 letters, digits, `_`, `:` or `-`",
                    ));
                }
            }
        }
    }
    for (i, action) in actions.iter().enumerate() {
        let at = format!("actions/{i}");
        match action {
            Action::Set { field, .. }
            | Action::AddItems { field, .. }
            | Action::RemoveItems { field, .. } => check_field(&at, field)?,
            Action::Unset { fields } => {
                for field in fields {
                    check_field(&at, field)?;
                }
            }
            Action::LinkUserFromData { user_id_field } => check_field(&at, user_id_field)?,
            Action::LinkGroupFromData { group_id_field } => check_field(&at, group_id_field)?,
            Action::Task(task) => check_task(task)?,
            Action::Delay { time } if !(0.0..=LONGEST_DELAY_SECONDS).contains(time) => {
                return Err(ConfigurationError::invalid(
                    &at,
                    format!(
                        "a delay is a number of seconds from 0 to {LONGEST_DELAY_SECONDS} (a year)"
                    ),
                ));
            }
            Action::Delay { .. }
            | Action::LinkCreator {}
            | Action::LinkEnlistedGroups { .. }
            | Action::MeasurementReviewedNotification {} => {}
        }
    }
    for after_action in after_actions {
        if let AfterAction::Task(task) = after_action {
            check_task(task)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn statuses() -> Statuses {
        ["new", "analyzed", "reviewed"]
            .into_iter()
            .map(|s| (s.to_owned(), BTreeMap::new()))
            .collect()
    }

    #[test]
    fn a_full_transition_round_trips() {
        let input = json!({
            "name": "analyze",
            "type": "automatic",
            "fromStatuses": ["new"],
            "toStatus": "analyzed",
            "conditions": [
                {"type": "document", "configuration": {"type": "object", "properties": {"data": {"type": "object", "properties": {"systolic": {"type": "number", "minimum": 140}}, "required": ["systolic"]}}}},
                {"type": "initiatorHasRelationToGroupInData", "groupIdField": "groupId", "relation": "staff", "requiredPermission": "VIEW_DOCUMENTS"},
                {"type": "initiatorHasRelationToUserInData", "userIdField": "patientId", "relation": "isStaffOfTargetPatient"}
            ],
            "actions": [
                {"type": "set", "field": "flag", "value": {"high": true}},
                {"type": "unset", "fields": ["tmp", "a.b"]},
                {"type": "addItems", "field": "tags", "values": ["x"]},
                {"type": "removeItems", "field": "tags", "values": ["y"]},
                {"type": "linkCreator"},
                {"type": "linkUserFromData", "userIdField": "patientId"},
                {"type": "linkEnlistedGroups", "onlyActive": true},
                {"type": "linkGroupFromData", "groupIdField": "groupId"},
                {"type": "task", "functionName": "analyze", "priority": 2, "data": {"a": 1}},
                {"type": "delay", "time": 1.5},
                {"type": "measurementReviewedNotification"}
            ],
            "afterActions": [{"type": "task", "functionName": "notify"}]
        });
        let transition = Transition::parse("5e9f00000000000000000001", &input).unwrap();
        transition.check(&statuses()).unwrap();
        let mut expected = input.clone();
        expected["id"] = json!("5e9f00000000000000000001");
        assert_eq!(serde_json::to_value(&transition).unwrap(), expected);
    }

    #[test]
    fn the_sdk_spelling_of_unset_is_accepted() {
        let action: Action =
            serde_json::from_value(json!({"type": "unset", "field": ["a"]})).unwrap();
        assert_eq!(
            action,
            Action::Unset {
                fields: vec!["a".into()]
            }
        );
    }

    #[test]
    fn ill_formed_transitions_are_refused() {
        let base = json!({"type": "manual", "fromStatuses": ["new"], "toStatus": "reviewed"});
        let cases = [
            json!({"toStatus": "nowhere"}),
            json!({"fromStatuses": ["nowhere"]}),
            json!({"fromStatuses": []}),
            json!({"type": "sometimes"}),
            json!({"typo": 1}),
            json!({"type": "automatic", "conditions": [{"type": "input", "configuration": {"type": "object"}}]}),
            json!({"conditions": [{"type": "document", "configuration": {"type": "integer"}}]}),
            json!({"conditions": [{"type": "document"}]}),
            json!({"actions": [{"type": "set", "field": "a..b", "value": 1}]}),
            json!({"actions": [{"type": "explode"}]}),
            json!({"actions": [{"type": "task", "functionName": " "}]}),
            json!({"actions": [{"type": "delay", "time": -1}]}),
            json!({"actions": [{"type": "delay", "time": LONGEST_DELAY_SECONDS * 2.0}]}),
            json!({"actions": [{"type": "set", "field": "a\u{0}", "value": 1}]}),
            json!({"actions": [{"type": "set", "field": "x".repeat(LONGEST_PROPERTY_NAME + 1), "value": 1}]}),
            json!({"actions": [{"type": "task", "functionName": "f".repeat(LONGEST_NAME + 1)}]}),
            json!({"name": "n".repeat(LONGEST_NAME + 1)}),
            json!({"conditions": [{"type": "initiatorHasRelationToGroupInData", "groupIdField": "g", "relation": "staff", "requiredPermission": "VIEW DOCUMENTS\n"}]}),
        ];
        for case in cases {
            let mut input = base.clone();
            for (key, value) in case.as_object().unwrap() {
                input[key] = value.clone();
            }
            let refused = Transition::parse("5e9f00000000000000000001", &input)
                .and_then(|t| t.check(&statuses()));
            assert!(refused.is_err(), "{input}");
        }
        // Each case above is refused for what it changes: the same well formed is taken.
        let mut fine = base.clone();
        fine["conditions"] = json!([{"type": "initiatorHasRelationToGroupInData", "groupIdField": "g", "relation": "staff", "requiredPermission": "VIEW_DOCUMENTS:notes"}]);
        fine["actions"] =
            json!([{"type": "set", "field": "x".repeat(LONGEST_PROPERTY_NAME), "value": 1}]);
        Transition::parse("5e9f00000000000000000001", &fine)
            .and_then(|t| t.check(&statuses()))
            .unwrap();
    }
}
