//! The localization service, `/localizations/v1` (snake_case, epoch milliseconds): texts by key
//! and language, and the ISO 3166 countries and regions and ISO 639-1 languages.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};
use vigil_commands::CommandError;
use vigil_domain::error::ExhCode;
use vigil_domain::localizations::{
    self as domain, Catalog, DEFAULT_LANGUAGE, Localization, LocalizationCommand,
    LocalizationError, Texts,
};
use vigil_projections::localizations::{self as model, LocalizationRow};

use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Rql};
use crate::routes::{field_format as format, rendered_page, required_filter};
use crate::state::AppState;

/// How often a bulk request decides again when the catalog changed under it.
const ATTEMPTS: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create).put(update).delete(remove))
        .route("/request", post(request))
        .route("/countries", get(countries))
        .route("/countries/{country}/regions", get(regions))
        .route("/languages", get(languages))
        .merge(super::health())
}

/// A localization as the localization service returns it.
fn localization_json(row: &LocalizationRow) -> Value {
    json!({
        "key": row.key,
        "text": row.text.0,
        "creation_timestamp": row.creation_timestamp,
        "update_timestamp": row.update_timestamp,
    })
}

/// `GET /localizations/v1/?<rql>`: the localizations (at most 100 a page).
async fn list(
    State(state): State<AppState>,
    _: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    let page = model::localizations(&state.store, &query).await?;
    Ok(rendered_page(page, &query, localization_json))
}

fn missing(message: impl Into<String>) -> ApiError {
    ApiError::new(ExhCode::MissingRequiredFields, message)
}

/// The `localizations` of a bulk request body: `[{key, text: {<LANG>: text}}]`.
fn given(body: JsonBody<Map<String, Value>>) -> Result<Vec<Localization>, ApiError> {
    let mut fields = body.read()?;
    let items = match fields.remove("localizations") {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err(missing("The request needs `localizations`")),
        Some(_) => return Err(format("`localizations` is a list of `{key, text}`")),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format(format!(
            "`{unknown}` is not a field of this request"
        )));
    }
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut item) = item else {
                return Err(format("Each localization is `{key, text}`"));
            };
            let key = match item.remove("key") {
                Some(Value::String(key)) => key,
                None | Some(Value::Null) => return Err(missing("Each localization needs a `key`")),
                Some(_) => return Err(format("A localization's `key` is a string")),
            };
            let text = match item.remove("text") {
                Some(Value::Object(text)) => text
                    .into_iter()
                    .map(|(language, text)| match text {
                        Value::String(text) => Ok((language, text)),
                        _ => Err(format(format!(
                            "The texts of `{key}` are strings by language code"
                        ))),
                    })
                    .collect::<Result<Texts, _>>()?,
                None | Some(Value::Null) => {
                    return Err(missing(format!("The localization `{key}` needs a `text`")));
                }
                Some(_) => return Err(format("A localization's `text` is `{<LANG>: text}`")),
            };
            if let Some(unknown) = item.keys().next() {
                return Err(format(format!(
                    "`{unknown}` is not a field of a localization"
                )));
            }
            Ok(Localization { key, text })
        })
        .collect()
}

/// Runs the bulk `command` that `decide` makes of the catalog as it is, deciding again (up to
/// [`ATTEMPTS`] times) when another request changed the catalog in between so that `retry`
/// refuses it; answers what `decide` said with the command, once the read models show it.
async fn bulk<T>(
    state: &AppState,
    caller: &Caller,
    decide: impl Fn(&Catalog) -> (Option<LocalizationCommand>, T),
    retry: impl Fn(&LocalizationError) -> bool,
) -> Result<T, ApiError> {
    let stream = Catalog::stream();
    let meta = caller.meta();
    for _ in 0..ATTEMPTS {
        let (catalog, _) = state.bus.load::<Catalog>(&stream).await?;
        let (command, answer) = decide(&catalog);
        let Some(command) = command else {
            return Ok(answer);
        };
        match state.bus.execute::<Catalog>(&stream, &command, &meta).await {
            Ok(outcome) => {
                state.settle(outcome.position).await?;
                return Ok(answer);
            }
            Err(CommandError::Domain(refused)) if retry(&refused) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(ApiError::new(
        ExhCode::Conflict,
        "The localizations kept changing while this request was decided; try again",
    ))
}

/// `POST /localizations/v1/` `{localizations}`: creates those whose key is new; the others are
/// left as they are and named.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write(&state, &caller, body, true).await
}

/// `PUT /localizations/v1/` `{localizations}`: sets the given texts of those that exist (the
/// other languages keep theirs); the others are named.
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    write(&state, &caller, body, false).await
}

/// Creates (`create`) or updates the localizations of a bulk request: those whose key is new, or
/// exists; answers how many it wrote and which keys it left.
async fn write(
    state: &AppState,
    caller: &Caller,
    body: JsonBody<Map<String, Value>>,
    create: bool,
) -> Result<Json<Value>, ApiError> {
    let (permission, [written, left, left_ids]) = if create {
        (
            "CREATE_LOCALIZATIONS",
            ["created", "existing", "existing_ids"],
        )
    } else {
        (
            "UPDATE_LOCALIZATIONS",
            ["updated", "missing", "missing_ids"],
        )
    };
    caller.require(permission)?;
    let given = given(body)?;
    domain::check(&given, create).map_err(CommandError::Domain)?;
    let answer = bulk(
        state,
        caller,
        |catalog| {
            let (writing, leaving): (Vec<&Localization>, Vec<&Localization>) = given
                .iter()
                .partition(|l| catalog.localizations.contains_key(&l.key) != create);
            let mut answer = Map::new();
            answer.insert(written.into(), writing.len().into());
            answer.insert(left.into(), leaving.len().into());
            answer.insert(
                left_ids.into(),
                json!(leaving.iter().map(|l| &l.key).collect::<Vec<_>>()),
            );
            let localizations: Vec<Localization> = writing.into_iter().cloned().collect();
            let command = if localizations.is_empty() {
                None
            } else if create {
                Some(LocalizationCommand::Create(localizations))
            } else {
                Some(LocalizationCommand::Update(localizations))
            };
            (command, Value::Object(answer))
        },
        |refused| match refused {
            LocalizationError::Exists(_) => create,
            LocalizationError::Missing(_) => !create,
            _ => false,
        },
    )
    .await?;
    Ok(Json(answer))
}

/// `DELETE /localizations/v1/?<rql>`: deletes every localization the (required) filter matches.
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Rql(query): Rql,
) -> Result<Json<Value>, ApiError> {
    caller.require("DELETE_LOCALIZATIONS")?;
    required_filter(&query)?;
    let keys = model::matching_keys(&state.store, &query).await?;
    let affected = bulk(
        &state,
        &caller,
        |catalog| {
            let present: Vec<String> = keys
                .iter()
                .filter(|key| catalog.localizations.contains_key(*key))
                .cloned()
                .collect();
            let affected = present.len();
            let command = (!present.is_empty()).then_some(LocalizationCommand::Delete(present));
            (command, affected)
        },
        |_| false,
    )
    .await?;
    Ok(Json(json!({"records_affected": affected})))
}

/// A requested localization: its key and the arguments that fill its `$1`, `$2`, ...
/// (`"heart_rate, 06/10/2021, 63"`).
fn requested(entry: &str) -> (&str, Vec<&str>) {
    let mut parts = entry.split(',').map(str::trim);
    let key = parts.next().unwrap_or_default();
    (key, parts.collect())
}

/// `text` with `$1`, `$2`, ... replaced by `arguments` (the highest numbers first, so `$1`
/// does not take the start of `$10`).
fn filled(text: &str, arguments: &[&str]) -> String {
    let mut text = text.to_owned();
    for (n, argument) in arguments.iter().enumerate().rev() {
        text = text.replace(&format!("${}", n + 1), argument);
    }
    text
}

/// The strings of list `key` of `fields`.
fn string_list(fields: &mut Map<String, Value>, key: &str) -> Result<Vec<String>, ApiError> {
    match fields.remove(key) {
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(item) => Ok(item),
                _ => Err(format(format!("`{key}` lists strings"))),
            })
            .collect(),
        None | Some(Value::Null) => Err(missing(format!("The request needs `{key}`"))),
        Some(_) => Err(format(format!("`{key}` is a list of strings"))),
    }
}

/// `POST /localizations/v1/request` `{localization_codes, localizations}`: the texts of these
/// keys in these languages, `EN` always included (the fallback); keys without a localization
/// and languages without a text are left out.
async fn request(
    State(state): State<AppState>,
    _: Caller,
    body: JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let mut fields = body.read()?;
    let codes = string_list(&mut fields, "localization_codes")?;
    let entries = string_list(&mut fields, "localizations")?;
    if let Some(unknown) = fields.keys().next() {
        return Err(format(format!(
            "`{unknown}` is not a field of this request"
        )));
    }
    let mut languages: BTreeSet<String> = codes.iter().map(|c| c.to_ascii_uppercase()).collect();
    languages.insert(DEFAULT_LANGUAGE.to_owned());
    let keys: Vec<String> = entries
        .iter()
        .map(|entry| requested(entry).0.to_owned())
        .collect();
    let rows = model::by_keys(&state.store, &keys).await?;
    let mut answer = Map::new();
    for entry in &entries {
        let (key, arguments) = requested(entry);
        let Some(row) = rows.iter().find(|row| row.key == key) else {
            continue;
        };
        let texts: Map<String, Value> = row
            .text
            .0
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(language, _)| languages.contains(*language))
            .filter_map(|(language, text)| {
                let text = text.as_str()?;
                Some((language.clone(), Value::String(filled(text, &arguments))))
            })
            .collect();
        answer.insert(key.to_owned(), Value::Object(texts));
    }
    Ok(Json(Value::Object(answer)))
}

/// A whole list in Extra Horizon's list shape (one page of all of it).
fn whole(data: Vec<String>) -> Json<Value> {
    Json(json!({
        "page": {"total": data.len(), "offset": 0, "limit": data.len()},
        "data": data,
    }))
}

/// `GET /localizations/v1/countries`: every ISO 3166-1 alpha-2 country code.
async fn countries(_: Caller) -> Json<Value> {
    let mut codes: Vec<String> = rust_iso3166::ALL
        .iter()
        .map(|country| country.alpha2.to_owned())
        .collect();
    codes.sort();
    whole(codes)
}

/// `GET /localizations/v1/countries/{country}/regions`: the ISO 3166-2 codes of a country's
/// subdivisions (`BE-VLI`).
async fn regions(_: Caller, Path(country): Path<String>) -> Result<Json<Value>, ApiError> {
    let country = rust_iso3166::from_alpha2(&country.to_ascii_uppercase()).ok_or_else(|| {
        ApiError::new(
            ExhCode::ResourceUnknown,
            format!("`{country}` is not an ISO 3166-1 alpha-2 country code"),
        )
    })?;
    let mut codes: Vec<String> = country
        .subdivisions()
        .into_iter()
        .flatten()
        .map(|region| region.code.to_owned())
        .collect();
    codes.sort();
    Ok(whole(codes))
}

/// `GET /localizations/v1/languages` (deprecated by Extra Horizon): every language code a text
/// may be in.
async fn languages(_: Caller) -> Json<Value> {
    whole(domain::languages())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requested_keys_take_their_arguments() {
        assert_eq!(requested("greeting"), ("greeting", vec![]));
        assert_eq!(
            requested("heart_rate, 06/10/2021, 21:00, 63"),
            ("heart_rate", vec!["06/10/2021", "21:00", "63"])
        );
        let arguments: Vec<String> = (1..=10).map(|n| format!("a{n}")).collect();
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        assert_eq!(filled("$1 $10 $2", &arguments), "a1 a10 a2");
        assert_eq!(filled("at $2, was $1", &["63"]), "at $2, was 63");
    }

    #[test]
    fn countries_and_their_regions_come_from_iso_3166() {
        assert!(rust_iso3166::ALL.len() > 240);
        let belgium = rust_iso3166::from_alpha2("BE").unwrap();
        let regions = belgium.subdivisions().unwrap();
        assert!(regions.iter().any(|region| region.code == "BE-VLI"));
    }
}
