//! Indexes on a schema's documents: which fields, in which order, with which options.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ConfigurationError;
use crate::workflow::LONGEST_PATH;

/// The most fields an index may have: a database index has at most 32 columns, and a `data.` path
/// takes three (see the documents read model).
const MOST_FIELDS: usize = 10;

/// The root fields of a document an index may name besides `data.*` paths.
const ROOT_FIELDS: &[&str] = &[
    "id",
    "creatorId",
    "userIds",
    "groupIds",
    "status",
    "statusChangedTimestamp",
    "creationTimestamp",
    "updateTimestamp",
];

/// The root fields a unique index may name besides `data.*` paths.
const UNIQUE_ROOT_FIELDS: &[&str] = &["id", "creatorId", "status"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IndexType {
    Asc,
    Desc,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexField {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: IndexType,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparse: Option<bool>,
    /// Accepted for compatibility; every index is built without blocking writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Index {
    pub id: String,
    pub name: String,
    pub fields: Vec<IndexField>,
    #[serde(default)]
    pub options: IndexOptions,
    #[serde(default)]
    pub system: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexInput {
    fields: Vec<IndexField>,
    #[serde(default)]
    options: IndexOptions,
}

impl IndexField {
    /// The names of the path into `data` the field indexes, if it is a `data.` path whose names
    /// are made of letters, digits, `_` and `-` (so they can be spelled in an index definition).
    pub fn data_path(&self) -> Option<Vec<&str>> {
        let path = self.name.strip_prefix("data.")?;
        let names: Vec<&str> = path.split('.').collect();
        let plain = |name: &&str| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        (names.len() <= LONGEST_PATH && names.iter().all(plain)).then_some(names)
    }
}

impl Index {
    /// The `data.` path the index leads with, unless it is a `text` field: the path whose
    /// comparisons and sorts the index can answer.
    pub fn leading_data_path(&self) -> Option<&str> {
        self.fields
            .first()
            .filter(|field| field.kind != IndexType::Text && field.data_path().is_some())
            .map(|field| field.name.as_str())
    }

    /// The index a request asks for (`{fields, options}`), given its id.
    pub fn parse(id: &str, value: &Value) -> Result<Self, ConfigurationError> {
        let input: IndexInput = serde_json::from_value(value.clone())
            .map_err(|e| ConfigurationError::invalid("index", e.to_string()))?;
        if input.fields.is_empty() {
            return Err(ConfigurationError::invalid("fields", "an index has fields"));
        }
        if input.fields.len() > MOST_FIELDS {
            return Err(ConfigurationError::invalid(
                "fields",
                format!("an index has at most {MOST_FIELDS} fields"),
            ));
        }
        for field in &input.fields {
            let known = ROOT_FIELDS.contains(&field.name.as_str()) || field.data_path().is_some();
            if !known {
                return Err(ConfigurationError::invalid(
                    "fields",
                    format!(
                        "`{}` is neither a document field nor a `data.` path of at most \
                         {LONGEST_PATH} names made of letters, digits, `_` and `-`",
                        field.name
                    ),
                ));
            }
        }
        let not_comparable = input.fields.iter().find(|f| {
            f.kind == IndexType::Text
                || !(UNIQUE_ROOT_FIELDS.contains(&f.name.as_str()) || f.data_path().is_some())
        });
        if let (Some(true), Some(field)) = (input.options.unique, not_comparable) {
            return Err(ConfigurationError::invalid(
                "options.unique",
                format!(
                    "a unique index names `data.` paths, `id`, `creatorId` or `status` in \
                     ascending or descending order, not `{}`",
                    field.name
                ),
            ));
        }
        let name = input
            .fields
            .iter()
            .map(|f| {
                let kind = match f.kind {
                    IndexType::Asc => "1",
                    IndexType::Desc => "-1",
                    IndexType::Text => "text",
                };
                format!("{}_{kind}", f.name)
            })
            .collect::<Vec<_>>()
            .join("_");
        Ok(Self {
            id: id.to_owned(),
            name,
            fields: input.fields,
            options: input.options,
            system: false,
        })
    }

    /// The fields whose values no two documents of the schema may share, for a `unique` index
    /// (`None` for any other, and for one naming `id`, which is unique anyway).
    pub fn unique_fields(&self) -> Option<&[IndexField]> {
        let trivially = self.fields.iter().any(|f| f.name == "id");
        (self.options.unique == Some(true) && !trivially).then_some(self.fields.as_slice())
    }

    /// Whether a document holding none of the fields is left out of a unique index's check.
    pub fn is_sparse(&self) -> bool {
        self.options.sparse == Some(true)
    }

    pub fn is_text(&self) -> bool {
        self.fields.iter().any(|f| f.kind == IndexType::Text)
    }

    /// The `text` fields among `fields` that name one key of `data` (`data.<key>`): those whose
    /// strings a trigram index can search (deeper paths may cross arrays of objects, which the
    /// text of the path's value does not show).
    pub fn searched(fields: &[IndexField]) -> impl Iterator<Item = &IndexField> {
        fields.iter().filter(|field| {
            field.kind == IndexType::Text && field.data_path().is_some_and(|path| path.len() == 1)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_unique_index_names_fields_whose_values_can_be_compared() {
        for fields in [
            json!([{"name": "data.note", "type": "text"}]),
            json!([{"name": "data.a", "type": "asc"}, {"name": "userIds", "type": "asc"}]),
        ] {
            let error = Index::parse(
                "5e9f00000000000000000001",
                &json!({"fields": fields, "options": {"unique": true}}),
            );
            assert!(error.is_err(), "{fields} accepted");
        }
        let index = Index::parse(
            "5e9f00000000000000000001",
            &json!({"fields": [{"name": "data.a", "type": "asc"}, {"name": "creatorId", "type": "desc"}], "options": {"unique": true, "sparse": true}}),
        )
        .unwrap();
        assert_eq!(index.unique_fields().map(<[IndexField]>::len), Some(2));
        assert!(index.is_sparse());
        let by_id = Index::parse(
            "5e9f00000000000000000001",
            &json!({"fields": [{"name": "id", "type": "asc"}], "options": {"unique": true}}),
        )
        .unwrap();
        assert_eq!(by_id.unique_fields(), None);
    }

    #[test]
    fn an_index_is_named_after_its_fields() {
        let index = Index::parse(
            "5e9f00000000000000000001",
            &json!({"fields": [{"name": "data.patientId", "type": "asc"}, {"name": "creationTimestamp", "type": "desc"}], "options": {"sparse": true}}),
        )
        .unwrap();
        assert_eq!(index.name, "data.patientId_1_creationTimestamp_-1");
        assert_eq!(index.options.sparse, Some(true));
    }

    #[test]
    fn unknown_fields_are_refused() {
        for fields in [
            json!([]),
            json!([{"name": "password", "type": "asc"}]),
            json!([{"name": "data.", "type": "asc"}]),
            json!([{"name": "data.a", "type": "up"}]),
            json!([{"name": "data.a'b", "type": "asc"}]),
            json!([{"name": "data.a..b", "type": "asc"}]),
            json!(
                (0..11)
                    .map(|n| json!({"name": format!("data.f{n}"), "type": "asc"}))
                    .collect::<Vec<_>>()
            ),
            json!([{"name": format!("data.{}", vec!["a"; 17].join(".")), "type": "asc"}]),
        ] {
            assert!(
                Index::parse("5e9f00000000000000000001", &json!({"fields": fields})).is_err(),
                "{fields}"
            );
        }
    }
}
