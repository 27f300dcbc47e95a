//! `oauth2_authorizations_v1`: the OAuth2 authorization codes that may still be redeemed (a
//! redeemed or revoked one is removed; the log keeps it). Codes are never stored, not even here.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::authorization::Authorization;
use vigil_domain::auth::authorization::CodeChallenge;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{AuthorizationEvent, Event};
use vigil_domain::log::Filter;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table};

pub static AUTHORIZATIONS: Table = Table::new(
    "oauth2_authorizations_v1",
    &[
        ("id", Text),
        ("user_id", Text),
        ("application_id", Text),
        ("client_id", Text),
        ("redirect_uri", Text),
        ("state", Text),
        ("code_challenge_method", Text),
        ("code_challenge", Text),
        ("expiry_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&AUTHORIZATIONS];

pub struct Authorizations;

impl Projection for Authorizations {
    fn name(&self) -> &'static str {
        "authorizations_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Authorization::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Authorization(event) = event else {
                continue;
            };
            match event {
                AuthorizationEvent::Created(e) => {
                    let (method, challenge) = match &e.challenge {
                        Some(CodeChallenge::Plain(c)) => (Some("plain"), Some(c.clone())),
                        Some(CodeChallenge::S256(c)) => (Some("S256"), Some(c.clone())),
                        None => (None, None),
                    };
                    changes.upsert(
                        &AUTHORIZATIONS,
                        position,
                        [
                            ("id", id.into()),
                            ("user_id", e.user_id.to_string().into()),
                            ("application_id", e.application_id.to_string().into()),
                            ("client_id", e.client_id.clone().into()),
                            ("redirect_uri", e.redirect_uri.clone().into()),
                            ("state", e.state.clone().into()),
                            ("code_challenge_method", method.into()),
                            ("code_challenge", challenge.into()),
                            ("expiry_timestamp", e.expires_at.millis().into()),
                            ("creation_timestamp", at.into()),
                            ("update_timestamp", at.into()),
                        ],
                    )?;
                }
                AuthorizationEvent::Redeemed(_) | AuthorizationEvent::Revoked(_) => {
                    changes.delete(&AUTHORIZATIONS, position, [("id", id.into())])?;
                }
                AuthorizationEvent::CodeReplayed(_) => {}
            }
        }
        Ok(())
    }
}

/// An authorization as the read model holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuthorizationRow {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge_method: Option<String>,
    pub code_challenge: Option<String>,
    pub expiry_timestamp: i64,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const SELECT: &str = "SELECT id, user_id, client_id, redirect_uri, state, code_challenge_method, \
    code_challenge, expiry_timestamp, creation_timestamp, update_timestamp FROM oauth2_authorizations_v1";

/// The unspent authorization with this id.
pub async fn find(store: &ReadStore, id: &str) -> Result<Option<AuthorizationRow>, sqlx::Error> {
    crate::with_pool!(store, pool => {
        sqlx::query_as::<_, AuthorizationRow>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// The properties `GET /auth/v2/oauth2/authorizations` may filter and sort on.
pub const FIELDS: &[Field] = &[
    Field {
        path: "id",
        column: "id",
        field_type: FieldType::Text,
    },
    Field {
        path: "userId",
        column: "user_id",
        field_type: FieldType::Text,
    },
    Field {
        path: "clientId",
        column: "client_id",
        field_type: FieldType::Text,
    },
    Field {
        path: "expiryTimestamp",
        column: "expiry_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "creationTimestamp",
        column: "creation_timestamp",
        field_type: FieldType::Timestamp,
    },
];

/// A page of unspent authorizations; `of_user` limits it to one user's.
pub async fn list(
    store: &ReadStore,
    query: &Query,
    of_user: Option<&str>,
) -> Result<Page<AuthorizationRow>, QueryError> {
    let compiled = List {
        select: SELECT,
        from: "FROM oauth2_authorizations_v1",
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: crate::sql::of_user(of_user),
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, AuthorizationRow)
}
