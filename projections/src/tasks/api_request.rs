//! `api_requests_v1` and `api_request_logs_v1`: every call of an API function, and what its run
//! logged.

use serde_json::Value as JsonValue;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{ApiRequestEvent, Event};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::tasks::api_request::ApiRequest;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};
use crate::tasks::task::{RunLogs, error_json};

pub static API_REQUESTS: Table = Table::new(
    "api_requests_v1",
    &[
        ("id", Text),
        ("function_name", Text),
        ("method", Text),
        ("path", Text),
        ("user_id", Text),
        ("application_id", Text),
        ("status_code", BigInt),
        ("timestamp", BigInt),
        ("duration_ms", BigInt),
        ("error", Json),
        ("position", BigInt),
    ],
    1,
);

pub static API_REQUEST_LOGS: Table = Table::new(
    "api_request_logs_v1",
    &[
        ("request_id", Text),
        ("line", BigInt),
        ("message", Text),
        ("timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

/// The lines API requests' runs logged.
pub static API_REQUEST_RUN_LOGS: RunLogs = RunLogs::new(
    &API_REQUEST_LOGS,
    "request_id",
    "SELECT message, timestamp FROM api_request_logs_v1",
    "FROM api_request_logs_v1",
);

static TABLES: [&Table; 2] = [&API_REQUESTS, &API_REQUEST_LOGS];

pub struct ApiRequests;

fn id_cell(id: Option<Id>) -> Value {
    id.map_or(Value::Null, |id| id.to_string().into())
}

impl Projection for ApiRequests {
    fn name(&self) -> &'static str {
        "api_requests_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[ApiRequest::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        for event in &recorded.commit.events {
            let Event::ApiRequest(ApiRequestEvent::Recorded(e)) = event else {
                continue;
            };
            changes.upsert(
                &API_REQUESTS,
                recorded.position,
                [
                    ("id", id.into()),
                    ("function_name", e.function_name.clone().into()),
                    ("method", e.method.clone().into()),
                    ("path", e.path.clone().into()),
                    ("user_id", id_cell(e.user_id)),
                    ("application_id", id_cell(e.application_id)),
                    ("status_code", i64::from(e.status_code).into()),
                    ("timestamp", recorded.commit.recorded_at.millis().into()),
                    (
                        "duration_ms",
                        i64::try_from(e.duration_ms).unwrap_or(i64::MAX).into(),
                    ),
                    (
                        "error",
                        e.error
                            .as_ref()
                            .map_or(Value::Null, |error| Value::Json(error_json(error))),
                    ),
                ],
            )?;
            API_REQUEST_RUN_LOGS.write(changes, id, recorded.position, &e.run.logs)?;
        }
        Ok(())
    }
}

type Json = sqlx::types::Json<JsonValue>;

/// A request as `GET /tasks/v1/apiRequests` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiRequestRow {
    pub id: String,
    pub function_name: String,
    pub method: String,
    pub path: String,
    pub user_id: Option<String>,
    pub application_id: Option<String>,
    pub status_code: i64,
    pub timestamp: i64,
    pub duration_ms: i64,
    pub error: Option<Json>,
}

const FIELDS: &[Field] = &[
    Field::new("id", "id", FieldType::Text),
    Field::new("functionName", "function_name", FieldType::Text),
    Field::new("method", "method", FieldType::Text),
    Field::new("path", "path", FieldType::Text),
    Field::new("userId", "user_id", FieldType::Text),
    Field::new("applicationId", "application_id", FieldType::Text),
    Field::new("statusCode", "status_code", FieldType::Integer),
    Field::new("timestamp", "timestamp", FieldType::Timestamp),
];

/// A page of the requests.
pub async fn api_requests(
    store: &ReadStore,
    query: &Query,
) -> Result<Page<ApiRequestRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, function_name, method, path, user_id, application_id, status_code, \
                 timestamp, duration_ms, error FROM api_requests_v1",
        from: "FROM api_requests_v1",
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, ApiRequestRow)
}
