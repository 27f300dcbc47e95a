//! A document's data: paths into it, and the checks against its schema.

use super::*;

/// A dotted path a request names: names joined by dots, not too many, not too long.
pub(super) fn check_path(path: &str) -> Result<(), DocumentError> {
    if !vigil_schemas::workflow::fits_path(path) {
        return Err(DocumentError::InvalidData(format!(
            "`{path}` is not a path of at most {LONGEST_PATH} names joined by dots"
        )));
    }
    Ok(())
}

/// The value at a dotted path of `data`.
pub fn value_at<'a>(data: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let first = data.get(parts.next()?)?;
    parts.try_fold(first, |value, part| value.get(part))
}

pub(super) fn get_path_mut<'a>(
    data: &'a mut Map<String, Value>,
    path: &str,
) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let first = data.get_mut(parts.next()?)?;
    parts.try_fold(first, |value, part| value.get_mut(part))
}

/// Sets the value at a dotted path, making the objects on the way.
pub(super) fn set_path(data: &mut Map<String, Value>, path: &str, value: Value) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = data;
    for part in parents {
        let entry = current
            .entry((*part).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        let Value::Object(next) = entry else { return };
        current = next;
    }
    current.insert((*last).to_owned(), value);
}

/// Removes the value at a dotted path, if there is one.
pub(super) fn remove_path(data: &mut Map<String, Value>, path: &str) {
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut current = data;
    for part in parents {
        let Some(Value::Object(next)) = current.get_mut(*part) else {
            return;
        };
        current = next;
    }
    current.remove(*last);
}

pub(super) fn id_at(data: &Map<String, Value>, field: &str) -> Option<Id> {
    value_at(data, field)?.as_str()?.parse().ok()
}

pub(super) fn add_id(ids: &mut Vec<Id>, id: Id) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// The longest comment, in characters.
pub const LONGEST_COMMENT: usize = 10_000;

/// A comment's text: not empty, not too long.
pub(super) fn comment_text(text: &str) -> Result<String, DocumentError> {
    let length = text.chars().count();
    if text.trim().is_empty() || length > LONGEST_COMMENT {
        return Err(DocumentError::InvalidData(format!(
            "text: a comment is 1 to {LONGEST_COMMENT} characters"
        )));
    }
    Ok(text.to_owned())
}

/// How deep a document's data may nest.
pub(super) const DEEPEST_DATA: usize = 32;

pub(super) fn deeper_than(value: &Value, levels: usize) -> bool {
    match value {
        Value::Object(fields) => levels == 0 || fields.values().any(|v| deeper_than(v, levels - 1)),
        Value::Array(items) => levels == 0 || items.iter().any(|v| deeper_than(v, levels - 1)),
        _ => false,
    }
}

/// Checks data against the schema's properties. Root fields outside the schema that the document
/// already had (`before`) with the same value are left alone: removing a property from a schema
/// does not lock the documents that have it.
pub(super) fn check_data(
    schema: &SchemaSnapshot,
    before: Option<&Map<String, Value>>,
    data: &Map<String, Value>,
) -> Result<(), DocumentError> {
    if data.values().any(|v| deeper_than(v, DEEPEST_DATA)) {
        return Err(DocumentError::InvalidData(format!(
            "/: data nests deeper than {DEEPEST_DATA} levels"
        )));
    }
    let properties = &schema.compiled.definition.properties;
    let checked: Map<String, Value> = data
        .iter()
        .filter(|(key, value)| {
            properties.contains_key(*key) || before.and_then(|b| b.get(*key)) != Some(*value)
        })
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    schema
        .compiled
        .validate_data(&Value::Object(checked))
        .map_err(|violations| {
            DocumentError::InvalidData(crate::error::listed(
                violations.iter().map(|v| {
                    format!(
                        "{}: {}",
                        if v.path.is_empty() { "/" } else { &v.path },
                        v.message
                    )
                }),
                "; ",
            ))
        })
}
