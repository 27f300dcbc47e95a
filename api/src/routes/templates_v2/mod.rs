//! The template service v2, `/templates/v2` (camelCase, ISO times): templates whose Handlebars
//! outputs are rendered with inputs (`vigil_scheduler::templates`).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_domain::error::ExhCode;
use vigil_domain::json::JsonOf;
use vigil_domain::localizations::DEFAULT_LANGUAGE;
use vigil_domain::templates::{self as domain, TemplateAttributes, TemplateError};
use vigil_projections::templates::{self as model, TemplateRow};
use vigil_scheduler::templates::{self as renderer, OutputError, Texts};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, OptionalJsonBody, Rql};
use crate::routes::{field_format as format, iso_time, optional_text as text, rendered_page};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{template}", put(update).delete(remove))
        .route("/{template}/resolve", post(resolve))
        .merge(super::health())
}

/// A template as the template service returns it.
fn template_json(id: &str, attributes: &TemplateAttributes, created: i64, updated: i64) -> Value {
    let mut json = json!({
        "id": id,
        "name": attributes.name,
        "outputs": attributes.outputs,
        "creationTimestamp": iso_time(created),
        "updateTimestamp": iso_time(updated),
    });
    if let Some(fields) = json.as_object_mut() {
        if let Some(description) = &attributes.description {
            fields.insert("description".into(), description.clone().into());
        }
        if let Some(inputs) = &attributes.inputs {
            fields.insert("inputs".into(), Value::Object(inputs.0.clone()));
        }
    }
    json
}

fn row_json(row: &TemplateRow) -> Value {
    let attributes = TemplateAttributes {
        name: row.name.clone(),
        description: row.description.clone(),
        inputs: row
            .inputs
            .as_ref()
            .and_then(|inputs| inputs.0.as_object().cloned())
            .map(JsonOf),
        outputs: serde_json::from_value(row.outputs.0.clone()).unwrap_or_default(),
    };
    template_json(
        &row.id,
        &attributes,
        row.creation_timestamp,
        row.update_timestamp,
    )
}

/// `GET /templates/v2/?<rql>`.
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("VIEW_TEMPLATES")?;
    let page = model::templates(&state.store, &query).await?;
    Ok(rendered_page(page, &query, row_json))
}

fn unknown() -> ApiError {
    ApiError::from(vigil_commands::CommandError::Domain(TemplateError::Unknown))
}

/// What a create or update body gives, each field absent (`None`) or given (`null`: removed).
struct Given {
    name: Option<String>,
    description: Option<Option<String>>,
    inputs: Option<Option<JsonOf<Map<String, Value>>>>,
    outputs: Option<BTreeMap<String, String>>,
}

fn given(body: JsonBody<Map<String, Value>>) -> Result<Given, ApiError> {
    let mut fields = body.read()?;
    let name = match text(&mut fields, "name")? {
        Some(None) => return Err(format("`name` is a string")),
        name => name.flatten(),
    };
    let description = text(&mut fields, "description")?;
    let inputs = match fields.remove("inputs") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Object(inputs)) => Some(Some(JsonOf(inputs))),
        Some(_) => return Err(format("`inputs` is `{<name>: {type, ...}}`")),
    };
    let outputs = match fields.remove("outputs") {
        None => None,
        Some(Value::Object(outputs)) => Some(
            outputs
                .into_iter()
                .map(|(name, text)| match text {
                    Value::String(text) => Ok((name, text)),
                    _ => Err(format(format!("The output `{name}` is a string"))),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(format("`outputs` is `{<name>: <Handlebars text>}`")),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format(format!("`{unknown}` is not a field of a template")));
    }
    Ok(Given {
        name,
        description,
        inputs,
        outputs,
    })
}

/// Refuses outputs that do not compile, naming the first.
fn compiles(attributes: &TemplateAttributes) -> Result<(), ApiError> {
    renderer::check(&attributes.outputs).map_err(|error| {
        ApiError::new(
            ExhCode::TemplateSyntax,
            format!("The output `{}` is not a valid template", error.output),
        )
        .with("syntaxError", error_json(&error))
    })
}

fn error_json(error: &OutputError) -> Value {
    json!({"output": error.output, "message": error.message})
}

/// `POST /templates/v2/` `{name, description?, inputs?, outputs}`.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("CREATE_TEMPLATES")?;
    let given = given(body)?;
    let (Some(name), Some(outputs)) = (given.name, given.outputs) else {
        return Err(ApiError::new(
            ExhCode::MissingRequiredFields,
            "A template needs a `name` and `outputs`",
        ));
    };
    let attributes = TemplateAttributes {
        name,
        description: given.description.flatten(),
        inputs: given.inputs.flatten(),
        outputs,
    };
    compiles(&attributes)?;
    let (id, outcome) = vigil_commands::templates::create(
        &state.bus,
        &state.ids,
        attributes.clone(),
        &caller.meta(),
    )
    .await?;
    state.settle(outcome.position).await?;
    let at = outcome
        .recorded_at
        .unwrap_or_else(vigil_commands::ids::now)
        .millis();
    Ok(Json(template_json(&id.to_string(), &attributes, at, at)))
}

/// `PUT /templates/v2/{idOrName}`: what is given changes (`description` and `inputs` are
/// removed by `null`).
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(template): Path<String>,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    caller.require("UPDATE_TEMPLATES")?;
    let given = given(body)?;
    let (id, current) = vigil_commands::templates::find(&state.bus, &template)
        .await?
        .ok_or_else(unknown)?;
    let attributes = TemplateAttributes {
        name: given.name.unwrap_or(current.name),
        description: given.description.unwrap_or(current.description),
        inputs: given.inputs.unwrap_or(current.inputs),
        outputs: given.outputs.unwrap_or(current.outputs),
    };
    compiles(&attributes)?;
    let outcome =
        vigil_commands::templates::update(&state.bus, id, attributes, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// `DELETE /templates/v2/{idOrName}`.
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(template): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_TEMPLATES")?;
    let (id, _) = vigil_commands::templates::find(&state.bus, &template)
        .await?
        .ok_or_else(unknown)?;
    let outcome = vigil_commands::templates::delete(&state.bus, id, &caller.meta()).await?;
    state.settle(outcome.position).await?;
    Ok(Json(json!({"affectedRecords": 1})))
}

/// The localizations with these keys, as `t` reads them.
async fn texts_of(state: &AppState, keys: &[String], texts: &mut Texts) -> Result<(), ApiError> {
    for row in vigil_projections::localizations::by_keys(&state.store, keys).await? {
        let by_language: BTreeMap<String, String> =
            serde_json::from_value(row.text.0).unwrap_or_default();
        texts.insert(row.key, by_language);
    }
    Ok(())
}

/// `POST /templates/v2/{idOrName}/resolve` `{inputs?, language?, timeZone?}`: every output
/// rendered, by name. Needs `RESOLVE_TEMPLATES` or `RESOLVE_TEMPLATES:<name>`.
async fn resolve(
    State(state): State<AppState>,
    caller: Caller,
    Path(template): Path<String>,
    body: OptionalJsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.read()?;
    let (_, attributes) = vigil_commands::templates::find(&state.bus, &template)
        .await?
        .ok_or_else(unknown)?;
    let scoped = format!("RESOLVE_TEMPLATES:{}", attributes.name);
    // Held unscoped, the permission covers every template.
    if !caller.actor.allows(&scoped) {
        return Err(ApiError::no_permission("RESOLVE_TEMPLATES"));
    }
    let inputs = match fields.remove("inputs") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(inputs)) => inputs,
        Some(_) => return Err(format("`inputs` is an object")),
    };
    let requested = match text(&mut fields, "language")? {
        Some(Some(language)) if !language.is_empty() => Some(language.to_ascii_uppercase()),
        _ => None,
    };
    // The time zone only matters to the date helpers, which this version does not have.
    text(&mut fields, "timeZone")?;
    if let Some(unknown) = fields.keys().next() {
        return Err(format(format!(
            "`{unknown}` is not a field of this request"
        )));
    }
    let language = match (requested, caller.actor.record().user_id) {
        (Some(language), _) => language,
        (None, Some(user)) => vigil_projections::users::user::find(&state.store, &user.to_string())
            .await?
            .map_or_else(
                || DEFAULT_LANGUAGE.to_owned(),
                |row| row.language.to_ascii_uppercase(),
            ),
        (None, None) => DEFAULT_LANGUAGE.to_owned(),
    };
    if let Some(types) = &attributes.inputs {
        domain::check_inputs(&types.0, &inputs)
            .map_err(|message| ApiError::new(ExhCode::TemplateFilling, message))?;
    }
    let inputs = Value::Object(inputs);
    let mut texts = Texts::new();
    let keys: Vec<String> = renderer::literal_keys(&attributes.outputs)
        .into_iter()
        .collect();
    texts_of(&state, &keys, &mut texts).await?;
    let (mut rendered, missing) = renderer::render(&attributes.outputs, &inputs, &language, &texts);
    let unfetched: Vec<String> = missing
        .into_iter()
        .filter(|key| !keys.contains(key))
        .collect();
    if !unfetched.is_empty() {
        // Keys the inputs named: fetched, then rendered again.
        texts_of(&state, &unfetched, &mut texts).await?;
        rendered = renderer::render(&attributes.outputs, &inputs, &language, &texts).0;
    }
    let rendered = rendered.map_err(|error| {
        ApiError::new(
            ExhCode::TemplateResolving,
            format!("The output `{}` cannot be rendered", error.output),
        )
        .with("resolveError", error_json(&error))
    })?;
    Ok(Json(json!(rendered)))
}
