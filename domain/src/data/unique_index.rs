//! The values a document holds under the `unique` indexes of its schema, which no other document
//! of the schema may hold. The command layer reserves them (a reservation stream per value) and
//! asks the read models about documents written before the index was unique ([`UniqueLookup`]).

use futures_core::future::BoxFuture;
use serde_json::{Map, Value};
use vigil_schemas::index::Index;

use crate::data::document::{Document, SchemaSnapshot, value_at};
use crate::id::Id;

/// The reservation namespace of unique index values.
pub const NAMESPACE: &str = "unique-index";

/// What a document holds under one unique index: a value per field, `null` where it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct UniqueKey {
    /// The index's id.
    pub index: String,
    /// The index's field names (`data.` paths, `creatorId`, `status`).
    pub fields: Vec<String>,
    pub values: Vec<Value>,
}

impl UniqueKey {
    /// The reserved value: the schema, the index and the values, numbers written alike whatever
    /// their spelling (`1` and `1.0`) and object keys in order.
    pub fn reserved(&self, schema: Id) -> String {
        let values: Vec<Value> = self.values.iter().map(canonical).collect();
        format!("{schema}/{}/{}", self.index, Value::Array(values))
    }
}

/// The keys `document` holds under the unique indexes of `schema`: none once it is deleted, and
/// none under a sparse index of whose fields it holds none.
pub fn unique_keys(schema: &SchemaSnapshot, document: &Document) -> Vec<UniqueKey> {
    if !document.created || document.deleted {
        return Vec::new();
    }
    schema
        .compiled
        .definition
        .indexes
        .iter()
        .filter_map(|index| key(index, document))
        .collect()
}

fn key(index: &Index, document: &Document) -> Option<UniqueKey> {
    let fields = index.unique_fields()?;
    let values: Vec<Option<Value>> = fields
        .iter()
        .map(|field| field_value(&field.name, document))
        .collect();
    if index.is_sparse() && values.iter().all(Option::is_none) {
        return None;
    }
    Some(UniqueKey {
        index: index.id.clone(),
        fields: fields.iter().map(|f| f.name.clone()).collect(),
        values: values
            .into_iter()
            .map(|v| v.unwrap_or(Value::Null))
            .collect(),
    })
}

/// The value of a unique index's field in `document`, if it has one.
fn field_value(name: &str, document: &Document) -> Option<Value> {
    match name {
        "creatorId" => document.creator_id.map(|id| Value::String(id.to_string())),
        "status" => Some(Value::String(document.status.clone())),
        _ => value_at(&document.data, name.strip_prefix("data.")?).cloned(),
    }
}

/// `value` with every number that is a whole number below 2^53 written as an integer.
fn canonical(value: &Value) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            #[allow(clippy::cast_possible_truncation)]
            Some(f) if f.fract() == 0.0 && f.abs() < EXACT => Value::from(f as i64),
            _ => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), canonical(v)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// The read models' answer to whether another document of a schema holds a unique key: one
/// written before the index was added holds it without a reservation.
pub trait UniqueLookup: Send + Sync {
    fn held_elsewhere<'a>(
        &'a self,
        schema: Id,
        document: Id,
        key: &'a UniqueKey,
    ) -> BoxFuture<'a, Result<bool, String>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn numbers_are_reserved_alike_whatever_their_spelling() {
        let key = |values: Value| UniqueKey {
            index: "i".into(),
            fields: vec!["data.a".into()],
            values: vec![values],
        };
        let schema = Id::from_bytes([1; 12]);
        assert_eq!(
            key(json!({"b": 1.0, "a": [2.0]})).reserved(schema),
            key(json!({"a": [2], "b": 1})).reserved(schema)
        );
        assert_ne!(
            key(json!(1)).reserved(schema),
            key(json!("1")).reserved(schema)
        );
        assert_ne!(
            key(json!(1.5)).reserved(schema),
            key(json!(1)).reserved(schema)
        );
    }

    proptest! {
        /// Equal JSON values are reserved alike, and writing them canonically changes no value.
        #[test]
        fn canonical_values_are_equal_to_their_originals(n in -1.0e15_f64..1.0e15) {
            let value = json!({"x": [n, n.trunc()]});
            let written = canonical(&value);
            let back: Vec<f64> = written["x"].as_array().unwrap().iter().filter_map(Value::as_f64).collect();
            prop_assert_eq!(back, vec![n, n.trunc()]);
            prop_assert_eq!(canonical(&written), written);
        }
    }
}
