//! `subscriptions_v1`: the event service's subscriptions, one row each.

use serde_json::{Value as JsonValue, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, SubscriptionEvent};
use vigil_domain::events::subscription::Subscription;
use vigil_domain::log::Filter;

use crate::json_sql::{Indexes, JsonField};
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static SUBSCRIPTIONS: Table = Table::new(
    "subscriptions_v1",
    &[
        ("id", Text),
        ("service_name", Text),
        ("service_version", Json),
        ("event_types", Json),
        ("retriable", Bool),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&SUBSCRIPTIONS];

pub struct Subscriptions;

impl Projection for Subscriptions {
    fn name(&self) -> &'static str {
        "subscriptions_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Subscription::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let at = recorded.commit.recorded_at.millis();
        for event in &recorded.commit.events {
            let Event::Subscription(SubscriptionEvent::Created(created)) = event else {
                continue;
            };
            changes.upsert(
                &SUBSCRIPTIONS,
                recorded.position,
                [
                    ("id", recorded.commit.stream.key().into()),
                    ("service_name", created.service_name.clone().into()),
                    (
                        "service_version",
                        Value::Json(json!(created.service_version)),
                    ),
                    ("event_types", Value::Json(json!(created.event_types))),
                    ("retriable", Value::Bool(created.retriable)),
                    ("creation_timestamp", at.into()),
                    ("update_timestamp", at.into()),
                ],
            )?;
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A subscription as `GET /events/v1/subscriptions` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: String,
    pub service_name: String,
    pub service_version: Json,
    pub event_types: Json,
    pub retriable: bool,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const SUBSCRIPTION_FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("service.name", "service_name", FieldType::Text),
    Field::new("retriable", "retriable", FieldType::Bool),
    Field::new(
        "creation_timestamp",
        "creation_timestamp",
        FieldType::Timestamp,
    ),
    Field::new("update_timestamp", "update_timestamp", FieldType::Timestamp),
];

const SUBSCRIPTION_JSON: &[JsonField] = &[
    JsonField {
        path: "event_types",
        column: "event_types",
        nested: false,
        contained: false,
    },
    JsonField {
        path: "service.version",
        column: "service_version",
        nested: true,
        contained: false,
    },
];

/// A page of the subscriptions.
pub async fn subscriptions(
    store: &ReadStore,
    query: &Query,
) -> Result<Page<SubscriptionRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, service_name, service_version, event_types, retriable, \
                 creation_timestamp, update_timestamp FROM subscriptions_v1",
        from: "FROM subscriptions_v1",
        fields: SUBSCRIPTION_FIELDS,
        relations: &[],
        json: SUBSCRIPTION_JSON,
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, SubscriptionRow)
}

/// The id of every subscription.
pub async fn ids(store: &ReadStore) -> Result<Vec<String>, QueryError> {
    let rows = crate::with_pool!(store, pool => {
        sqlx::query_scalar::<_, String>("SELECT id FROM subscriptions_v1")
            .fetch_all(pool)
            .await?
    });
    Ok(rows)
}
