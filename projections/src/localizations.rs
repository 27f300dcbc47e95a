//! `localizations_v1`: every localization, one row per key, its texts as JSON.

use serde_json::{Value as JsonValue, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, LocalizationEvent};
use vigil_domain::localizations::Catalog;
use vigil_domain::log::Filter;

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static LOCALIZATIONS: Table = Table::new(
    "localizations_v1",
    &[
        ("key", Text),
        ("text", Json),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&LOCALIZATIONS];

pub struct Localizations;

impl Projection for Localizations {
    fn name(&self) -> &'static str {
        "localizations_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Catalog::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Localization(event) = event else {
                continue;
            };
            match event {
                LocalizationEvent::Created(written) => {
                    for localization in &written.localizations {
                        changes.upsert(
                            &LOCALIZATIONS,
                            position,
                            [
                                ("key", localization.key.clone().into()),
                                ("text", Value::Json(json!(localization.text))),
                                ("creation_timestamp", at.into()),
                                ("update_timestamp", at.into()),
                            ],
                        )?;
                    }
                }
                LocalizationEvent::Updated(written) => {
                    for localization in &written.localizations {
                        changes.update(
                            &LOCALIZATIONS,
                            position,
                            [
                                ("key", localization.key.clone().into()),
                                ("text", Value::Json(json!(localization.text))),
                                ("update_timestamp", at.into()),
                            ],
                        )?;
                    }
                }
                LocalizationEvent::Deleted(deleted) => {
                    for key in &deleted.keys {
                        changes.delete(&LOCALIZATIONS, position, [("key", key.clone().into())])?;
                    }
                }
            }
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A localization as `GET /localizations/v1/` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LocalizationRow {
    pub key: String,
    pub text: Json,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const FIELDS: &[Field] = &[
    Field::new("key", "key", FieldType::Text),
    Field::new(
        "creation_timestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("update_timestamp", "update_timestamp", FieldType::Timestamp),
];

const JSON: &[JsonField] = &[JsonField {
    path: "text",
    column: "text",
    nested: true,
    contained: false,
}];

const SELECT: &str = "SELECT key, text, creation_timestamp, update_timestamp FROM localizations_v1";

/// The list of the localizations (everyone sees all of them).
fn list() -> List<'static> {
    List {
        select: SELECT,
        from: "FROM localizations_v1",
        fields: FIELDS,
        relations: &[],
        json: JSON,
        indexed: Indexes::NONE,
        tiebreak: "key",
        visible: None,
        limits: Limits::STANDARD,
    }
}

/// A page of the localizations.
pub async fn localizations(
    store: &ReadStore,
    query: &Query,
) -> Result<Page<LocalizationRow>, QueryError> {
    let compiled = list().compile(store, query)?;
    crate::fetch_page!(store, compiled, LocalizationRow)
}

/// The keys of every localization `query`'s filter matches (unpaged): what a delete acts on.
pub async fn matching_keys(store: &ReadStore, query: &Query) -> Result<Vec<String>, QueryError> {
    list().keys(store, query).await
}

/// The localizations with these keys (those that exist).
pub async fn by_keys(
    store: &ReadStore,
    keys: &[String],
) -> Result<Vec<LocalizationRow>, sqlx::Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::default();
    let placeholders = sql.bind_all(keys.iter().map(|key| Value::Text(key.clone())));
    sql.text = format!("{SELECT} WHERE key IN ({placeholders})");
    crate::with_pool!(store, pool => {
        let mut rows = sqlx::query_as::<_, LocalizationRow>(sqlx::AssertSqlSafe(sql.text));
        for value in &sql.binds {
            rows = crate::bind_value!(rows, value);
        }
        rows.fetch_all(pool).await
    })
}
