//! `/auth/v2/applications`: the client programs tokens are bound to, and their versions, whose
//! credentials are shown once at creation and kept only as digests.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{delete, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use vigil_commands::auth::oauth1::consumer_context;
use vigil_commands::secrets;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::{
    Application, ApplicationChanges, ApplicationCommand, ApplicationKind,
};
use vigil_domain::error::ExhCode;
use vigil_domain::id::{Id, StreamId};
use vigil_projections::auth::application::{self, ApplicationRow, VersionRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql, parse_id};
use crate::routes::rendered_page;
use crate::state::{AppState, AuthService};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/applications", post(create).get(list))
        .route("/applications/{id}", put(update).delete(remove))
        .route("/applications/{id}/versions", post(create_version))
        .route(
            "/applications/{id}/versions/{version}",
            delete(remove_version),
        )
}

fn stream(id: Id) -> StreamId {
    StreamId::of(Application::KIND, id)
}

/// The names of a version's credentials, by application type.
fn credential_names(kind: &str) -> (&'static str, &'static str) {
    if kind == "oauth1" {
        ("consumerKey", "consumerSecret")
    } else {
        ("clientId", "clientSecret")
    }
}

/// An application as the auth service shows it; without `VIEW_APPLICATIONS` only its public face.
fn application_json(app: &ApplicationRow, versions: &[&VersionRow], full: bool) -> Value {
    let mut object = json!({
        "name": app.name,
        "description": app.description,
        "type": app.kind,
    });
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    if let Some(logo) = &app.logo {
        map.insert("logo".into(), json!(logo));
    }
    if !full {
        return object;
    }
    let (key_name, _) = credential_names(&app.kind);
    map.insert("id".into(), json!(app.id));
    map.insert(
        "versions".into(),
        versions
            .iter()
            .map(|v| {
                json!({
                    "id": v.id,
                    "name": v.name,
                    key_name: v.client_id,
                    "creationTimestamp": v.creation_timestamp,
                })
            })
            .collect(),
    );
    if app.kind == "oauth2" {
        let uris: Value = serde_json::from_str(&app.redirect_uris).unwrap_or_else(|_| json!([]));
        map.insert("redirectUris".into(), uris);
        map.insert("confidential".into(), json!(app.confidential));
    }
    map.insert("creationTimestamp".into(), json!(app.creation_timestamp));
    map.insert("updateTimestamp".into(), json!(app.update_timestamp));
    object
}

/// `GET /auth/v2/applications`: everyone authenticated sees names and types; holders of
/// `VIEW_APPLICATIONS` see everything but secrets.
async fn list(
    State(state): State<AuthService>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let full = caller.actor.allows("VIEW_APPLICATIONS");
    let page = application::list(&state.store, &query).await?;
    let ids: Vec<String> = page.data.iter().map(|a| a.id.clone()).collect();
    let versions = if full {
        application::versions(&state.store, &ids).await?
    } else {
        vec![]
    };
    let mut by_application: BTreeMap<&str, Vec<&VersionRow>> = BTreeMap::new();
    for version in &versions {
        by_application
            .entry(version.application_id.as_str())
            .or_default()
            .push(version);
    }
    Ok(rendered_page(page, &query, |app| {
        let versions = by_application
            .get(app.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        application_json(app, versions, full)
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewApplication {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    description: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    logo: Option<String>,
    #[serde(default)]
    confidential: bool,
}

fn oauth2(kind: &str) -> Result<bool, ApiError> {
    match kind {
        "oauth2" => Ok(true),
        "oauth1" => Ok(false),
        other => Err(ApiError::new(
            ExhCode::FieldFormat,
            format!("type must be oauth1 or oauth2, not {other}"),
        )),
    }
}

/// The application as the read model shows it once it reflects `position`.
async fn rendered(state: &AuthService, id: Id, position: u64) -> Result<Json<Value>, ApiError> {
    state.settle(position).await?;
    let query = vigil_projections::rql::parse(&format!("eq(id,{id})"))?;
    let app = application::list(&state.store, &query)
        .await?
        .data
        .pop()
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "No application with this id"))?;
    Ok(Json(application_json(&app, &[], true)))
}

async fn create(
    State(state): State<AuthService>,
    caller: Caller,
    body: JsonBody<NewApplication>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_APPLICATIONS")?;
    let new = body.read()?;
    let kind = if oauth2(&new.kind)? {
        ApplicationKind::OAuth2 {
            confidential: new.confidential,
            redirect_uris: new.redirect_uris,
        }
    } else {
        ApplicationKind::OAuth1
    };
    let id = state.ids.next();
    let meta = caller.meta();
    let mut outcome = state
        .bus
        .execute::<Application>(
            &stream(id),
            &ApplicationCommand::Create {
                name: new.name,
                description: new.description,
                kind,
            },
            &meta,
        )
        .await?;
    if let Some(logo) = new.logo {
        let logo = ApplicationCommand::Update(ApplicationChanges {
            oauth2: true,
            logo: Some(logo),
            ..ApplicationChanges::default()
        });
        outcome = state
            .bus
            .execute::<Application>(&stream(id), &logo, &caller.meta())
            .await?;
    }
    rendered(&state, id, outcome.position).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationUpdate {
    #[serde(rename = "type")]
    kind: String,
    name: Option<String>,
    description: Option<String>,
    logo: Option<String>,
    redirect_uris: Option<Vec<String>>,
}

async fn update(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<ApplicationUpdate>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_APPLICATIONS")?;
    let id = parse_id(&id)?;
    let update = body.read()?;
    let changes = ApplicationChanges {
        oauth2: oauth2(&update.kind)?,
        name: update.name,
        description: update.description,
        logo: update.logo,
        redirect_uris: update.redirect_uris,
    };
    let outcome = state
        .bus
        .execute::<Application>(
            &stream(id),
            &ApplicationCommand::Update(changes),
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

async fn remove(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_APPLICATIONS")?;
    let id = parse_id(&id)?;
    let outcome = state
        .bus
        .execute::<Application>(&stream(id), &ApplicationCommand::Delete, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

#[derive(Deserialize)]
struct NewVersion {
    name: String,
}

/// `POST /auth/v2/applications/{id}/versions`: new credentials, shown in this answer only.
async fn create_version(
    State(state): State<AuthService>,
    caller: Caller,
    Path(id): Path<String>,
    body: JsonBody<NewVersion>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_APPLICATIONS")?;
    let id = parse_id(&id)?;
    let NewVersion { name } = body.read()?;
    let (application, _) = state.bus.load::<Application>(&stream(id)).await?;
    let version_id = state.ids.next();
    let (client_id, _) = secrets::new_token();
    let (secret, secret_digest) = secrets::new_token();
    // An OAuth1 consumer secret signs requests, so it is kept, sealed.
    let sealed_secret = (!application.oauth2)
        .then(|| {
            state
                .vault
                .seal(secret.as_bytes(), &consumer_context(version_id))
        })
        .transpose()
        .map_err(ApiError::internal)?;
    let command = ApplicationCommand::CreateVersion {
        version_id,
        name: name.clone(),
        client_id: client_id.clone(),
        secret_digest,
        sealed_secret,
    };
    let outcome = state
        .bus
        .execute::<Application>(&stream(id), &command, &caller.meta())
        .await?;
    state.settle(outcome.position).await?;
    let version_id = version_id.to_string();
    let created = application::versions(&state.store, &[id.to_string()])
        .await?
        .into_iter()
        .find(|v| v.id == version_id)
        .ok_or_else(|| ApiError::new(ExhCode::ResourceUnknown, "The version is gone"))?;
    let (key_name, secret_name) = credential_names(if application.oauth2 {
        "oauth2"
    } else {
        "oauth1"
    });
    Ok(Json(json!({
        "id": version_id,
        "name": name,
        key_name: client_id,
        secret_name: secret,
        "creationTimestamp": created.creation_timestamp,
    })))
}

async fn remove_version(
    State(state): State<AuthService>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_APPLICATIONS")?;
    let id = parse_id(&id)?;
    let outcome = state
        .bus
        .execute::<Application>(
            &stream(id),
            &ApplicationCommand::DeleteVersion { version },
            &caller.meta(),
        )
        .await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}
