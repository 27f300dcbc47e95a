//! `oidc_providers_v1`, `oidc_links_v1` and `oidc_login_attempts_v1`: the OpenID Connect
//! providers (without their secrets), which user logs in as which subject through which provider,
//! and every login through one.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::oidc::OidcLogin;
use vigil_domain::auth::oidc::OidcProvider;
use vigil_domain::auth::oidc::ProviderSettings;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, OidcLoginEvent, OidcProviderEvent, UserEvent};
use vigil_domain::log::Filter;
use vigil_domain::users::user::User;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static OIDC_PROVIDERS: Table = Table::new(
    "oidc_providers_v1",
    &[
        ("id", Text),
        ("name", Text),
        ("description", Text),
        ("client_id", Text),
        ("client_secret_hint", Text),
        ("issuer_id", Text),
        ("authorization_endpoint", Text),
        ("token_endpoint", Text),
        ("userinfo_endpoint", Text),
        ("redirect_uri", Text),
        ("enabled", Bool),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static OIDC_LINKS: Table = Table::new(
    "oidc_links_v1",
    &[
        ("user_id", Text),
        ("provider_id", Text),
        ("subject_id", Text),
        ("position", BigInt),
    ],
    2,
);

pub static OIDC_LOGIN_ATTEMPTS: Table = Table::new(
    "oidc_login_attempts_v1",
    &[
        ("id", Text),
        ("status", Text),
        ("provider_id", Text),
        ("provider_name", Text),
        ("provider_subject_id", Text),
        ("user_id", Text),
        ("error", Json),
        ("creation_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 3] = [&OIDC_PROVIDERS, &OIDC_LINKS, &OIDC_LOGIN_ATTEMPTS];

pub struct Oidc;

/// A provider's row cells from its settings (never the sealed secret), changed `at`.
fn settings_cells(id: &str, s: &ProviderSettings, at: i64) -> Vec<(&'static str, Value)> {
    vec![
        ("id", id.into()),
        ("name", s.name.clone().into()),
        ("description", s.description.clone().into()),
        ("client_id", s.client_id.clone().into()),
        ("client_secret_hint", s.client_secret_hint.clone().into()),
        ("issuer_id", s.issuer_id.clone().into()),
        (
            "authorization_endpoint",
            s.authorization_endpoint.clone().into(),
        ),
        ("token_endpoint", s.token_endpoint.clone().into()),
        ("userinfo_endpoint", s.userinfo_endpoint.clone().into()),
        ("redirect_uri", s.redirect_uri.clone().into()),
        ("update_timestamp", at.into()),
    ]
}

impl Projection for Oidc {
    fn name(&self) -> &'static str {
        "oidc_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[OidcProvider::KIND, OidcLogin::KIND, User::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            match event {
                Event::OidcProvider(OidcProviderEvent::Created(s)) => changes.upsert(
                    &OIDC_PROVIDERS,
                    position,
                    settings_cells(id, s, at)
                        .into_iter()
                        .chain([("enabled", false.into()), ("creation_timestamp", at.into())]),
                )?,
                Event::OidcProvider(OidcProviderEvent::Updated(s)) => {
                    changes.update(&OIDC_PROVIDERS, position, settings_cells(id, s, at))?;
                }
                Event::OidcProvider(
                    toggle @ (OidcProviderEvent::Enabled(_) | OidcProviderEvent::Disabled(_)),
                ) => changes.update(
                    &OIDC_PROVIDERS,
                    position,
                    [
                        ("id", id.into()),
                        (
                            "enabled",
                            matches!(toggle, OidcProviderEvent::Enabled(_)).into(),
                        ),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                Event::OidcProvider(OidcProviderEvent::Deleted(_)) => {
                    changes.delete(&OIDC_PROVIDERS, position, [("id", id.into())])?;
                }
                Event::User(UserEvent::OidcLinked(e)) => changes.upsert(
                    &OIDC_LINKS,
                    position,
                    [
                        ("user_id", id.into()),
                        ("provider_id", e.provider_id.to_string().into()),
                        ("subject_id", e.subject_id.get().clone().into()),
                    ],
                )?,
                Event::User(UserEvent::Deleted(_)) => {
                    changes.delete_where(&OIDC_LINKS, position, [("user_id", id.into())])?;
                }
                Event::User(UserEvent::OidcUnlinked(e)) => changes.delete(
                    &OIDC_LINKS,
                    position,
                    [
                        ("user_id", id.into()),
                        ("provider_id", e.provider_id.to_string().into()),
                    ],
                )?,
                Event::OidcLogin(OidcLoginEvent::Attempted(e)) => changes.upsert(
                    &OIDC_LOGIN_ATTEMPTS,
                    position,
                    [
                        ("id", id.into()),
                        (
                            "status",
                            if e.error.is_none() {
                                "success"
                            } else {
                                "failed"
                            }
                            .into(),
                        ),
                        ("provider_id", e.provider_id.to_string().into()),
                        ("provider_name", e.provider_name.clone().into()),
                        ("provider_subject_id", e.subject_id.clone().into()),
                        ("user_id", e.user_id.map(|u| u.to_string()).into()),
                        (
                            "error",
                            e.error
                                .as_ref()
                                .map(|error| {
                                    serde_json::json!({
                                        "code": error.code,
                                        "name": error.name,
                                        "message": error.message,
                                    })
                                })
                                .into(),
                        ),
                        ("creation_timestamp", at.into()),
                    ],
                )?,
                _ => {}
            }
        }
        Ok(())
    }
}

/// A provider as `GET /auth/v2/oidc/providers` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ProviderRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub client_id: String,
    pub client_secret_hint: String,
    pub issuer_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub redirect_uri: String,
    pub enabled: bool,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const fn text(path: &'static str, column: &'static str) -> Field {
    Field {
        path,
        column,
        field_type: FieldType::Text,
    }
}

const fn timestamp(path: &'static str, column: &'static str) -> Field {
    Field {
        path,
        column,
        field_type: FieldType::Timestamp,
    }
}

const PROVIDER_FIELDS: &[Field] = &[
    text("id", "id"),
    text("name", "name"),
    text("description", "description"),
    text("clientId", "client_id"),
    text("issuerId", "issuer_id"),
    text("authorizationEndpoint", "authorization_endpoint"),
    text("tokenEndpoint", "token_endpoint"),
    text("userinfoEndpoint", "userinfo_endpoint"),
    text("redirectUri", "redirect_uri"),
    Field {
        path: "enabled",
        column: "enabled",
        field_type: FieldType::Bool,
    },
    timestamp("creationTimestamp", "creation_timestamp"),
    timestamp("updateTimestamp", "update_timestamp"),
];

/// A page of the providers.
pub async fn providers(store: &ReadStore, query: &Query) -> Result<Page<ProviderRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, name, description, client_id, client_secret_hint, issuer_id, \
                 authorization_endpoint, token_endpoint, userinfo_endpoint, redirect_uri, enabled, \
                 creation_timestamp, update_timestamp FROM oidc_providers_v1",
        from: "FROM oidc_providers_v1",
        fields: PROVIDER_FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, ProviderRow)
}

/// How many users log in through `provider_id`.
pub async fn linked_users(store: &ReadStore, provider_id: &str) -> Result<u64, QueryError> {
    let count = crate::with_pool!(store, pool => {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM oidc_links_v1 WHERE provider_id = $1")
            .bind(provider_id)
        .fetch_one(pool)
        .await?
    });
    Ok(u64::try_from(count).unwrap_or(0))
}

/// A user's link to a provider.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LinkRow {
    pub user_id: String,
    pub provider_id: String,
    pub subject_id: String,
}

/// The provider links of `users`.
pub async fn links_of(store: &ReadStore, users: &[String]) -> Result<Vec<LinkRow>, QueryError> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = crate::sql::Sql::default();
    let placeholders = sql.bind_all(users.iter().cloned().map(crate::table::Value::Text));
    sql.text = format!(
        "SELECT user_id, provider_id, subject_id FROM oidc_links_v1 \
         WHERE user_id IN ({placeholders}) ORDER BY user_id, provider_id"
    );
    let rows = crate::with_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, LinkRow>(sqlx::AssertSqlSafe(sql.text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_all(pool).await?
    });
    Ok(rows)
}

/// A login through a provider, as `GET /auth/v2/oidc/loginAttempts` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LoginAttemptRow {
    pub id: String,
    pub status: String,
    pub provider_id: String,
    pub provider_name: String,
    pub provider_subject_id: Option<String>,
    pub user_id: Option<String>,
    pub error: Option<sqlx::types::Json<serde_json::Value>>,
    pub creation_timestamp: i64,
}

const ATTEMPT_FIELDS: &[Field] = &[
    text("id", "id"),
    text("status", "status"),
    text("providerId", "provider_id"),
    text("providerName", "provider_name"),
    text("providerSubjectId", "provider_subject_id"),
    text("userId", "user_id"),
    timestamp("creationTimestamp", "creation_timestamp"),
];

/// A page of the login attempts.
pub async fn login_attempts(
    store: &ReadStore,
    query: &Query,
) -> Result<Page<LoginAttemptRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, status, provider_id, provider_name, provider_subject_id, user_id, \
                 error, creation_timestamp FROM oidc_login_attempts_v1",
        from: "FROM oidc_login_attempts_v1",
        fields: ATTEMPT_FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, LoginAttemptRow)
}
