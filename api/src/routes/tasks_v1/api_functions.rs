//! API functions: `/tasks/v1/api/{functionName}/{path}` (every method) runs the function with the
//! request in AWS API Gateway's v2 shape and answers what it returns; `/tasks/v1/apiRequests` lists
//! the calls, `/tasks/v1/apiRequests/{id}/logs` what their runs logged.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{Map, Value, json};
use vigil_domain::aggregate::Aggregate;
use vigil_domain::error::ExhCode;
use vigil_domain::id::StreamId;
use vigil_domain::tasks::api_request::{ApiRequest, ApiRequestCommand, ApiRequestRecorded};
use vigil_domain::tasks::function::{self, Function};
use vigil_domain::tasks::task::{ErrorKind, RunError};
use vigil_projections::tasks::api_request::{self as model, API_REQUEST_RUN_LOGS, ApiRequestRow};

use crate::error::ApiError;
use crate::extract::{Caller, MaybeCaller, RawBody, Rql, parse_id};
use crate::routes::{iso_time, rendered_page};
use crate::state::{AppState, TasksService};

/// The longest time limit of an API function (Extra Horizon's).
pub const API_TIME_LIMIT: u32 = 30;
/// The largest request or response body of an API function (Extra Horizon's 6 MB).
pub const BODY_BYTES: usize = 6 * 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/{name}",
            get(call)
                .post(call)
                .put(call)
                .patch(call)
                .delete(call)
                .options(call),
        )
        .route(
            "/api/{name}/{*path}",
            get(call)
                .post(call)
                .put(call)
                .patch(call)
                .delete(call)
                .options(call),
        )
        .route("/apiRequests", get(list))
        .route("/apiRequests/{request_id}/logs", get(logs))
}

/// The request as an API Gateway v2 event: what the function receives.
fn gateway_event(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    caller: &MaybeCaller,
    body: &[u8],
) -> Value {
    let mut lowered = Map::new();
    for (name, value) in headers {
        // Credentials stay with Vigil: the function learns who called, not how.
        if name == axum::http::header::AUTHORIZATION {
            continue;
        }
        if let Ok(value) = value.to_str() {
            lowered.insert(name.as_str().to_ascii_lowercase(), value.into());
        }
    }
    let actor = caller.actor();
    if let Some(user) = actor.record().user_id {
        lowered.insert("x-exh-requesting-user-id".into(), user.to_string().into());
    }
    if let Some(application) = actor.record().application_id {
        lowered.insert(
            "x-exh-requesting-application-id".into(),
            application.to_string().into(),
        );
    }
    let (body, base64) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(body), true),
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query.map(|q| format!("?{q}")).unwrap_or_default(),
        "headers": lowered,
        "requestContext": {"http": {"method": method.as_str(), "path": path}},
        "body": body,
        "isBase64Encoded": base64,
    })
}

/// What the function returned as an HTTP answer, or why it cannot be one.
fn answer(result: &Value) -> Result<Response, String> {
    let status = result
        .get("statusCode")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok())
        .filter(|code| (200..500).contains(code))
        .ok_or("the result's `statusCode` is not a status from 200 to 499")?;
    let mut headers = HeaderMap::new();
    headers.insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(given) = result.get("headers").and_then(Value::as_object) {
        for (name, value) in given {
            let value = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a header name"))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| format!("the value of header `{name}` is not a header value"))?;
            headers.insert(name, value);
        }
    }
    let base64 = result.get("isBase64Encoded").and_then(Value::as_bool) == Some(true);
    let body = match result.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if base64 => base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| "the result's body is not base64".to_owned())?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    if body.len() > BODY_BYTES {
        return Err(format!("the result's body is over {BODY_BYTES} bytes"));
    }
    let status = StatusCode::from_u16(status).map_err(|e| e.to_string())?;
    Ok((status, headers, Body::from(body)).into_response())
}

/// `* /tasks/v1/api/{functionName}/{path}`: runs the API function.
async fn call(
    State(state): State<TasksService>,
    caller: MaybeCaller,
    method: Method,
    OriginalUri(uri): OriginalUri,
    Path(params): Path<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let name = params.get("name").cloned().unwrap_or_default();
    let path = format!("/{}", params.get("path").map_or("", String::as_str));
    let actor = caller.actor();
    let not_authenticated = || {
        ApiError::new(
            ExhCode::UserNotAuthenticated,
            "This request needs an access token",
        )
    };
    let stream = function::stream(&name).map_err(|_| unknown_function())?;
    let (function, _) = state.bus.load::<Function>(&stream).await?;
    let Some(called) = vigil_scheduler::tasks::Called::of(&function) else {
        return Err(match caller.user() {
            Some(_) => unknown_function(),
            None => not_authenticated(),
        });
    };
    let settings = called.settings;
    if let Err(permission) = settings
        .permission_mode
        .allows(&actor, "EXECUTE_API_FUNCTION", &name)
    {
        return Err(match caller.user() {
            Some(_) => ApiError::no_permission(&permission),
            None => not_authenticated(),
        });
    }
    if !function.enabled {
        return Err(ApiError::new(
            ExhCode::FunctionInvocation,
            format!("The function {name} is disabled"),
        ));
    }
    if settings.time_limit > API_TIME_LIMIT {
        return Err(ApiError::new(
            ExhCode::ApiFunctionTimeLimit,
            format!(
                "Only functions with a time limit of at most {API_TIME_LIMIT} s are API functions"
            ),
        ));
    }
    if body.len() > BODY_BYTES {
        return Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("An API function's request body is at most {BODY_BYTES} bytes"),
        ));
    }
    let runner = &state.tasks().runner;
    let Some(slot) = runner.try_slot() else {
        return Err(ApiError::new(
            ExhCode::ConcurrentApiFunctionLimit,
            "As many functions run as this deployment allows at once; try again shortly",
        ));
    };
    let started = Instant::now();
    let event = gateway_event(&method, &path, uri.query(), &headers, &caller, &body);
    let ran = runner
        .invoke(called, event, slot)
        .await
        .map_err(ApiError::internal)?;
    let outcome = match &ran.result {
        Ok(result) => answer(result).map_err(|message| RunError {
            kind: ErrorKind::Response,
            name: "InvalidApiFunctionResult".into(),
            message,
        }),
        Err(error) => Err(error.clone()),
    };
    let (status_code, error) = match &outcome {
        Ok(response) => (response.status().as_u16(), None),
        Err(error) => (
            super::function_failed(error).status().as_u16(),
            Some(error.clone()),
        ),
    };
    let path_and_query = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path,
    };
    let record = ApiRequestCommand::Record {
        request: ApiRequestRecorded {
            function_name: name,
            method: method.to_string(),
            path: path_and_query,
            user_id: actor.record().user_id,
            application_id: actor.record().application_id,
            status_code,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            run: ran.record,
        },
        mode: settings.permission_mode,
    };
    let id = state.ids.next();
    let recorded = state
        .bus
        .execute_new::<ApiRequest>(
            &StreamId::of(ApiRequest::KIND, id),
            &record,
            &caller.meta(),
            None,
        )
        .await?;
    // The caller that lists its requests next finds this one.
    state.settle(recorded.position).await?;
    outcome.map_err(|error| super::function_failed(&error))
}

fn unknown_function() -> ApiError {
    ApiError::new(ExhCode::ResourceUnknown, "No function has this name")
}

/// A request as the task service lists it.
fn request_json(row: &ApiRequestRow) -> Value {
    let mut json = json!({
        "id": row.id,
        "functionName": row.function_name,
        "method": row.method,
        "path": row.path,
        "statusCode": row.status_code,
        "timestamp": iso_time(row.timestamp),
        // Seconds, as Extra Horizon gives it.
        "duration": row.duration_ms as f64 / 1000.0,
    });
    if let Some(fields) = json.as_object_mut() {
        let optional = [
            ("userId", row.user_id.clone().map(Value::from)),
            ("applicationId", row.application_id.clone().map(Value::from)),
            ("error", row.error.as_ref().map(|error| error.0.clone())),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                fields.insert(key.into(), value);
            }
        }
    }
    json
}

/// `GET /tasks/v1/apiRequests?<rql>`.
async fn list(
    State(state): State<TasksService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_API_FUNCTION_REQUESTS")?;
    let page = model::api_requests(&state.store, &query).await?;
    Ok(rendered_page(page, &query, request_json))
}

/// `GET /tasks/v1/apiRequests/{id}/logs?<rql>`.
async fn logs(
    State(state): State<TasksService>,
    caller: Caller,
    Path(request_id): Path<String>,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_API_FUNCTION_REQUEST_LOGS")?;
    let id = parse_id(&request_id)?;
    let (request, _) = state
        .bus
        .load::<ApiRequest>(&StreamId::of(ApiRequest::KIND, id))
        .await?;
    if request.recorded.is_none() {
        return Err(ApiError::new(
            ExhCode::ResourceUnknown,
            "No API request has this id",
        ));
    }
    let page = API_REQUEST_RUN_LOGS
        .page(&state.store, &request_id, &query)
        .await?;
    if page.data.is_empty() && query.filter.is_none() {
        return Err(ApiError::new(
            ExhCode::NoApiRequestLogsFound,
            "The request's run logged nothing",
        ));
    }
    Ok(rendered_page(
        page,
        &query,
        |line| json!({"message": line.message, "timestamp": iso_time(line.timestamp)}),
    ))
}
