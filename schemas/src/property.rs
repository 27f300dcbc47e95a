//! Type configurations (Extra Horizon's JSON-Schema subset) and their compiled validators.

use serde_json::{Map, Value, json};

use crate::ConfigurationError;

fn invalid(path: &str, message: impl Into<String>) -> ConfigurationError {
    ConfigurationError::invalid(path, message)
}

/// The keywords each type may use, besides `type` and `queryable`.
fn keywords(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "object" => &["properties", "additionalProperties", "required"],
        "array" => &["items", "minItems", "maxItems", "contains"],
        "string" => &[
            "minLength",
            "maxLength",
            "pattern",
            "enum",
            "const",
            "format",
        ],
        "number" => &["minimum", "maximum", "enum", "const"],
        "boolean" => &["enum", "const"],
        _ => return None,
    })
}

/// Checks a type configuration and translates it into a JSON Schema (draft 2020-12).
pub fn to_json_schema(configuration: &Value, path: &str) -> Result<Value, ConfigurationError> {
    let object = configuration
        .as_object()
        .ok_or_else(|| invalid(path, "a type configuration is an object"))?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(path, "`type` is required"))?;
    let allowed = keywords(kind).ok_or_else(|| invalid(path, format!("unknown type `{kind}`")))?;
    let mut schema = Map::new();
    schema.insert("type".into(), json!(kind));
    for (key, value) in object {
        if key == "type" || key == "queryable" {
            continue;
        }
        if !allowed.contains(&key.as_str()) {
            return Err(invalid(
                path,
                format!("`{key}` is not allowed for type `{kind}`"),
            ));
        }
        let translated = match key.as_str() {
            "properties" => {
                let properties = value
                    .as_object()
                    .ok_or_else(|| invalid(path, "`properties` is an object"))?;
                let mut children = Map::new();
                for (name, child) in properties {
                    children.insert(
                        name.clone(),
                        to_json_schema(child, &format!("{path}/{name}"))?,
                    );
                }
                Value::Object(children)
            }
            "items" | "contains" => to_json_schema(value, &format!("{path}/{key}"))?,
            "additionalProperties" if value.is_object() => {
                to_json_schema(value, &format!("{path}/{key}"))?
            }
            "format" if value != "date-time" => {
                return Err(invalid(path, "only the `date-time` format is supported"));
            }
            "pattern" => {
                let pattern = value
                    .as_str()
                    .ok_or_else(|| invalid(path, "`pattern` is a string"))?;
                jsonschema::validator_for(&json!({"type": "string", "pattern": pattern})).map_err(
                    |e| {
                        invalid(
                            path,
                            format!("`pattern` is not a valid regular expression: {e}"),
                        )
                    },
                )?;
                value.clone()
            }
            _ => value.clone(),
        };
        schema.insert(key.clone(), translated);
    }
    if kind == "array" && !schema.contains_key("items") {
        return Err(invalid(path, "an array needs `items`"));
    }
    Ok(Value::Object(schema))
}

/// A violation of a compiled configuration, at a JSON pointer into the validated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

/// A compiled validator for documents' `data`.
#[derive(Debug)]
pub struct Validator {
    inner: jsonschema::Validator,
}

impl Validator {
    /// Compiles the properties of a schema (`{name: configuration}`) into a validator of `data`
    /// objects; properties that are not configured are not allowed.
    pub fn for_properties(properties: &Map<String, Value>) -> Result<Self, ConfigurationError> {
        Self::for_configuration(
            &json!({"type": "object", "properties": properties, "additionalProperties": false}),
        )
    }

    /// Compiles one type configuration (a transition condition's, say).
    pub fn for_configuration(configuration: &Value) -> Result<Self, ConfigurationError> {
        let schema = to_json_schema(configuration, "")?;
        let inner = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| invalid("", e.to_string()))?;
        Ok(Self { inner })
    }

    /// Every violation in `data`, each naming its path.
    pub fn validate(&self, data: &Value) -> Result<(), Vec<Violation>> {
        let violations: Vec<Violation> = self
            .inner
            .iter_errors(data)
            .map(|error| Violation {
                path: error.instance_path().to_string(),
                message: error.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }
}

/// The longest name of a property.
pub const LONGEST_PROPERTY_NAME: usize = 100;

/// Names no property may have, at any depth: they mean something to JavaScript objects and to
/// document databases, which a document's data may well meet on its way to a client.
const RESERVED: &[&str] = &["__proto__", "constructor", "prototype"];
/// Names no top-level property may have: a document's own fields.
const RESERVED_AT_ROOT: &[&str] = &["id", "_id"];

/// Checks the names of the properties nested in `configuration` (through `properties`, `items`,
/// `contains` and `additionalProperties`) with [`check_property_name`]. Only new configurations
/// are checked: a schema written before keeps compiling.
pub fn check_nested_names(configuration: &Value, path: &str) -> Result<(), ConfigurationError> {
    let Some(object) = configuration.as_object() else {
        return Ok(());
    };
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        for (name, child) in properties {
            check_property_name(&format!("{path}/properties"), name, false)?;
            check_nested_names(child, &format!("{path}/{name}"))?;
        }
    }
    for key in ["items", "contains", "additionalProperties"] {
        if let Some(child) = object.get(key) {
            check_nested_names(child, &format!("{path}/{key}"))?;
        }
    }
    Ok(())
}

/// Whether `name` may name a property (`root`: a top-level one): 1 to
/// [`LONGEST_PROPERTY_NAME`] characters, no control characters and no dot, not starting with `$`
/// (MongoDB operators, `$where`), and not reserved.
pub fn check_property_name(path: &str, name: &str, root: bool) -> Result<(), ConfigurationError> {
    let fits = !name.is_empty()
        && name.chars().count() <= LONGEST_PROPERTY_NAME
        && !name.chars().any(|c| c.is_control() || c == '.')
        && !name.starts_with('$');
    if !fits {
        return Err(ConfigurationError::invalid(
            path,
            format!(
                "a property name is 1 to {LONGEST_PROPERTY_NAME} characters, without dots or control characters, and does not start with `$`"
            ),
        ));
    }
    if RESERVED.contains(&name) || (root && RESERVED_AT_ROOT.contains(&name)) {
        return Err(ConfigurationError::invalid(
            path,
            format!("`{name}` is a reserved name"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blood_pressure() -> Validator {
        let properties = json!({
            "systolic": {"type": "number", "minimum": 0, "maximum": 300, "queryable": true},
            "diastolic": {"type": "number", "minimum": 0, "maximum": 300},
            "measured": {"type": "string", "format": "date-time"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}},
        });
        Validator::for_properties(properties.as_object().unwrap()).unwrap()
    }

    #[test]
    fn a_valid_document_passes() {
        let data = json!({"systolic": 120, "diastolic": 80, "measured": "2026-11-24T10:00:00Z", "tags": ["rest"]});
        assert_eq!(blood_pressure().validate(&data), Ok(()));
    }

    #[test]
    fn violations_name_their_paths() {
        let data = json!({"systolic": 400, "measured": "yesterday", "tags": ["far too long a tag"], "extra": 1});
        let violations = blood_pressure().validate(&data).unwrap_err();
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"/systolic"), "{violations:?}");
        assert!(paths.contains(&"/measured"), "{violations:?}");
        assert!(paths.contains(&"/tags/0"), "{violations:?}");
        assert!(
            paths.contains(&""),
            "additional properties are reported at the root: {violations:?}"
        );
    }

    #[test]
    fn configurations_outside_the_subset_are_refused() {
        let cases = [
            json!({"type": "integer"}),
            json!({"type": "array"}),
            json!({"type": "string", "format": "email"}),
            json!({"type": "string", "pattern": "("}),
            json!({"type": "number", "minLength": 3}),
            json!({"minimum": 3}),
        ];
        for case in cases {
            assert!(to_json_schema(&case, "/p").is_err(), "{case}");
        }
    }

    #[test]
    fn remote_references_are_never_fetched() {
        let schema = json!({"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/schema.json"}}});
        assert!(jsonschema::validator_for(&schema).is_err());
    }
}
