//! The template service v2 (`/templates/v2`): named templates whose Handlebars outputs are
//! rendered with inputs (see `vigil_scheduler::templates`).
//!
//! A template is an aggregate (one stream per template). Its name is unique among templates
//! (claimed through a reservation by the `commands` crate) and is how the mail service and
//! `RESOLVE_TEMPLATES:<name>` refer to it; its outputs were checked to compile before the
//! command was issued.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::json::JsonOf;

/// The longest name (and output name).
pub const NAME_CHARS: usize = 50;
/// The most bytes of a template's outputs and inputs as JSON.
pub const TEMPLATE_BYTES: usize = 512 * 1024;

/// A template's attributes, all of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TemplateAttributes {
    pub name: String,
    pub description: Option<String>,
    /// The inputs' types (`{<name>: {type, properties?, items?}}`), if declared.
    pub inputs: Option<JsonOf<Map<String, Value>>>,
    /// The Handlebars text of each output.
    pub outputs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct TemplateDeleted {}

events! {
    pub enum TemplateEvent {
        Created(TemplateAttributes) = "template.created",
        Updated(TemplateAttributes) = "template.updated",
        Deleted(TemplateDeleted) = "template.deleted",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateCommand {
    Create(TemplateAttributes),
    /// The attributes, all of them now.
    Update(TemplateAttributes),
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("Requested resource is unknown")]
    Unknown,
    #[error("this template exists already")]
    AlreadyExists,
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for TemplateError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::Unknown => ExhCode::ResourceUnknown,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// Whether `name` can name a template or an output: a letter, then up to 49 letters, digits,
/// `_` or `-` (the Extra Horizon CLI's rule).
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.len() <= NAME_CHARS
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why `inputs` (a map of type configurations) is not one, if it is not.
fn check_types(inputs: &Map<String, Value>, at: &str) -> Result<(), TemplateError> {
    for (name, configuration) in inputs {
        check_type(configuration, &format!("{at}{name}"))?;
    }
    Ok(())
}

fn check_type(configuration: &Value, at: &str) -> Result<(), TemplateError> {
    let invalid = |what: &str| {
        Err(TemplateError::Invalid(format!(
            "the input `{at}` {what}: `{{type}}` with `string`, `number`, `boolean`, `object` \
             (with `properties`) or `array` (with `items`)"
        )))
    };
    let Some(fields) = configuration.as_object() else {
        return invalid("is not a type");
    };
    let allowed: &[&str] = match fields.get("type").and_then(Value::as_str) {
        Some("string" | "number" | "boolean") => &["type"],
        Some("object") => match fields.get("properties") {
            Some(Value::Object(properties)) => {
                check_types(properties, &format!("{at}."))?;
                &["type", "properties"]
            }
            _ => return invalid("needs `properties`"),
        },
        Some("array") => match fields.get("items") {
            Some(items) => {
                check_type(items, &format!("{at}[]"))?;
                &["type", "items"]
            }
            None => return invalid("needs `items`"),
        },
        _ => return invalid("has no type it can have"),
    };
    if fields.keys().any(|key| !allowed.contains(&key.as_str())) {
        return invalid("has a field a type does not have");
    }
    Ok(())
}

fn check(attributes: &TemplateAttributes) -> Result<(), TemplateError> {
    let invalid = |message: String| Err(TemplateError::Invalid(message));
    if !is_name(&attributes.name) {
        return invalid(format!(
            "A template name starts with a letter and has at most {NAME_CHARS} letters, digits, \
             `_` or `-`"
        ));
    }
    if attributes.outputs.is_empty() {
        return invalid("A template has at least one output".into());
    }
    if let Some(output) = attributes.outputs.keys().find(|name| !is_name(name)) {
        return invalid(format!(
            "`{output}` cannot name an output: a letter, then at most {} letters, digits, `_` or `-`",
            NAME_CHARS - 1
        ));
    }
    if let Some(inputs) = &attributes.inputs {
        check_types(&inputs.0, "")?;
    }
    let bytes = serde_json::to_vec(&(&attributes.inputs, &attributes.outputs))
        .map_or(usize::MAX, |json| json.len());
    if bytes > TEMPLATE_BYTES {
        return invalid(format!(
            "A template's inputs and outputs are at most {TEMPLATE_BYTES} bytes of JSON; these are {bytes}"
        ));
    }
    Ok(())
}

/// Why `inputs` do not match the declared `types`, if they do not. Inputs not declared (the
/// mail service adds `tracking_hash`) and inputs left out or `null` are fine.
pub fn check_inputs(types: &Map<String, Value>, inputs: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in inputs {
        if let Some(configuration) = types.get(name) {
            check_input(configuration, value, name)?;
        }
    }
    Ok(())
}

fn check_input(configuration: &Value, value: &Value, at: &str) -> Result<(), String> {
    let kind = configuration
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let matches = match (kind, value) {
        (_, Value::Null) => true,
        ("string", Value::String(_))
        | ("number", Value::Number(_))
        | ("boolean", Value::Bool(_)) => true,
        ("object", Value::Object(fields)) => {
            let properties = configuration.get("properties").and_then(Value::as_object);
            for (name, value) in fields {
                if let Some(property) = properties.and_then(|p| p.get(name)) {
                    check_input(property, value, &format!("{at}.{name}"))?;
                }
            }
            true
        }
        ("array", Value::Array(items)) => {
            if let Some(item) = configuration.get("items") {
                for (index, value) in items.iter().enumerate() {
                    check_input(item, value, &format!("{at}[{index}]"))?;
                }
            }
            true
        }
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(format!("The input `{at}` is not a {kind}"))
    }
}

/// A template, while it exists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Template {
    pub attributes: Option<TemplateAttributes>,
}

impl Aggregate for Template {
    const KIND: &'static str = "template";
    type Command = TemplateCommand;
    type Event = TemplateEvent;
    type Error = TemplateError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let permission = match command {
            TemplateCommand::Create(_) => "CREATE_TEMPLATES",
            TemplateCommand::Update(_) => "UPDATE_TEMPLATES",
            TemplateCommand::Delete => "DELETE_TEMPLATES",
        };
        ctx.actor.require(permission, TemplateError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match (command, &self.attributes) {
            (TemplateCommand::Create(_), Some(_)) => Err(TemplateError::AlreadyExists),
            (TemplateCommand::Create(attributes), None) => {
                check(attributes)?;
                Ok(vec![TemplateEvent::Created(attributes.clone())])
            }
            (_, None) => Err(TemplateError::Unknown),
            (TemplateCommand::Update(attributes), Some(current)) => {
                check(attributes)?;
                if attributes == current {
                    return Ok(Vec::new());
                }
                Ok(vec![TemplateEvent::Updated(attributes.clone())])
            }
            (TemplateCommand::Delete, Some(_)) => {
                Ok(vec![TemplateEvent::Deleted(TemplateDeleted {})])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            TemplateEvent::Created(attributes) | TemplateEvent::Updated(attributes) => {
                self.attributes = Some(attributes.clone());
            }
            TemplateEvent::Deleted(_) => self.attributes = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::given;
    use serde_json::json;

    fn attributes(inputs: Value) -> TemplateAttributes {
        TemplateAttributes {
            name: "mail-report".into(),
            description: None,
            inputs: inputs.as_object().cloned().map(JsonOf),
            outputs: [("subject".to_owned(), "Hi {{@inputs.name}}".to_owned())].into(),
        }
    }

    fn invalid(decided: Result<Vec<TemplateEvent>, TemplateError>) -> bool {
        matches!(decided, Err(TemplateError::Invalid(_)))
    }

    #[test]
    fn a_template_is_created_updated_and_deleted() {
        let created = TemplateEvent::Created(attributes(json!({"name": {"type": "string"}})));
        given::<Template>(&[])
            .when(TemplateCommand::Create(attributes(
                json!({"name": {"type": "string"}}),
            )))
            .then(std::slice::from_ref(&created));
        given::<Template>(std::slice::from_ref(&created))
            .when(TemplateCommand::Create(attributes(json!({}))))
            .then_err(TemplateError::AlreadyExists);
        given::<Template>(std::slice::from_ref(&created))
            .when(TemplateCommand::Update(attributes(
                json!({"name": {"type": "string"}}),
            )))
            .then(&[]);
        let deleted = TemplateEvent::Deleted(TemplateDeleted {});
        given::<Template>(std::slice::from_ref(&created))
            .when(TemplateCommand::Delete)
            .then(std::slice::from_ref(&deleted));
        given::<Template>(&[created, deleted])
            .when(TemplateCommand::Update(attributes(json!({}))))
            .then_err(TemplateError::Unknown);
    }

    #[test]
    fn inputs_are_checked_against_their_declared_types() {
        let types = json!({"name": {"type": "string"}, "reading": {"type": "object", "properties": {
            "values": {"type": "array", "items": {"type": "number"}},
        }}});
        let types = types.as_object().unwrap();
        let fine = json!({"name": "Jane", "reading": {"values": [1, 2.5], "extra": true}, "tracking_hash": "x"});
        assert_eq!(check_inputs(types, fine.as_object().unwrap()), Ok(()));
        let bad = json!({"reading": {"values": [1, "2"]}});
        assert_eq!(
            check_inputs(types, bad.as_object().unwrap()),
            Err("The input `reading.values[1]` is not a number".into())
        );
    }

    #[test]
    fn names_outputs_and_input_types_are_checked() {
        for name in ["mail-report", "A_1", &"a".repeat(50)] {
            assert!(is_name(name), "{name}");
        }
        for name in ["", "1st", "mail report", "é", &"a".repeat(51)] {
            assert!(!is_name(name), "{name}");
        }
        let nested = json!({"reading": {"type": "object", "properties": {
            "values": {"type": "array", "items": {"type": "number"}},
        }}});
        let decided = given::<Template>(&[])
            .when(TemplateCommand::Create(attributes(nested)))
            .events_or_error();
        assert!(decided.is_ok());
        for bad in [
            json!({"x": {"type": "date"}}),
            json!({"x": {"type": "object"}}),
            json!({"x": {"type": "array", "items": {"type": "nope"}}}),
            json!({"x": {"type": "string", "options": []}}),
            json!({"x": "string"}),
        ] {
            let decided = given::<Template>(&[])
                .when(TemplateCommand::Create(attributes(bad.clone())))
                .events_or_error();
            assert!(invalid(decided), "{bad}");
        }
        let mut no_outputs = attributes(json!({}));
        no_outputs.outputs.clear();
        let decided = given::<Template>(&[])
            .when(TemplateCommand::Create(no_outputs))
            .events_or_error();
        assert!(invalid(decided));
    }
}
