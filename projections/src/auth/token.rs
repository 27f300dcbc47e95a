//! `oauth2_access_tokens_v1` and `oauth2_refresh_tokens_v1`: the current tokens of each login
//! session, found by the SHA-256 digest of the presented token.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::session::IssuedToken;
use vigil_domain::auth::session::Session;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, SessionEvent, UserEvent};
use vigil_domain::log::Filter;
use vigil_domain::users::user::{KeptLogin, User};

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static ACCESS_TOKENS: Table = Table::new(
    "oauth2_access_tokens_v1",
    &[
        ("session_id", Text),
        ("id", Text),
        ("user_id", Text),
        ("application_id", Text),
        ("token_digest", Text),
        ("refresh_token_id", Text),
        ("expiry_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static REFRESH_TOKENS: Table = Table::new(
    "oauth2_refresh_tokens_v1",
    &[
        ("session_id", Text),
        ("id", Text),
        ("user_id", Text),
        ("application_id", Text),
        ("token_digest", Text),
        ("expiry_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 2] = [&ACCESS_TOKENS, &REFRESH_TOKENS];

pub struct Tokens;

fn token_cells(token: &IssuedToken) -> [(&'static str, Value); 3] {
    [
        ("id", token.id.to_string().into()),
        ("token_digest", token.digest.to_string().into()),
        ("expiry_timestamp", token.expires_at.millis().into()),
    ]
}

impl Projection for Tokens {
    fn name(&self) -> &'static str {
        "tokens_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Session::KIND, User::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        // The stream key of a session (or a user) is its id.
        let session = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let event = match event {
                Event::Session(event) => event,
                // A deleted user, one who reset their password or was linked to or unlinked from an OIDC
                // provider, is logged out everywhere.
                Event::User(
                    UserEvent::Deleted(_)
                    | UserEvent::PasswordReset(_)
                    | UserEvent::OidcLinked(_)
                    | UserEvent::OidcUnlinked(_),
                ) => {
                    for table in TABLES {
                        changes.delete_where(table, position, [("user_id", session.into())])?;
                    }
                    continue;
                }
                // A user who changed their password is logged out everywhere else.
                Event::User(UserEvent::LoggedOutElsewhere(e)) => {
                    let kept = match e.kept {
                        KeptLogin::Session(kept) => Some(("session_id", kept.to_string().into())),
                        KeptLogin::OAuth1Token(_) | KeptLogin::None => None,
                    };
                    for table in TABLES {
                        changes.delete_where_except(
                            table,
                            position,
                            [("user_id", session.into())],
                            kept.clone(),
                        )?;
                    }
                    continue;
                }
                _ => continue,
            };
            match event {
                SessionEvent::Started(e) => {
                    let owner = [
                        ("session_id", session.into()),
                        ("user_id", e.user_id.to_string().into()),
                        ("application_id", e.application_id.to_string().into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ];
                    let refresh_id = ("refresh_token_id", e.refresh.id.to_string().into());
                    let access: Vec<_> = owner
                        .iter()
                        .cloned()
                        .chain(token_cells(&e.access))
                        .chain([refresh_id])
                        .collect();
                    let refresh: Vec<_> =
                        owner.into_iter().chain(token_cells(&e.refresh)).collect();
                    changes.upsert(&ACCESS_TOKENS, position, access)?;
                    changes.upsert(&REFRESH_TOKENS, position, refresh)?;
                }
                SessionEvent::Refreshed(e) => {
                    let key = [
                        ("session_id", session.into()),
                        ("update_timestamp", at.into()),
                    ];
                    let refresh_id = ("refresh_token_id", e.refresh.id.to_string().into());
                    let access: Vec<_> = key
                        .iter()
                        .cloned()
                        .chain(token_cells(&e.access))
                        .chain([refresh_id])
                        .collect();
                    let refresh: Vec<_> = key.into_iter().chain(token_cells(&e.refresh)).collect();
                    changes.update(&ACCESS_TOKENS, position, access)?;
                    changes.update(&REFRESH_TOKENS, position, refresh)?;
                }
                SessionEvent::Ended(_) | SessionEvent::RefreshTokenReused(_) => {
                    for table in TABLES {
                        changes.delete(table, position, [("session_id", session.into())])?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A current token as `GET /auth/v2/oauth2/tokens` and `…/refreshTokens` list it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TokenRow {
    pub session_id: String,
    pub id: String,
    pub user_id: String,
    pub application_id: String,
    /// The session's current refresh token (access tokens only).
    pub refresh_token_id: Option<String>,
    pub expiry_timestamp: i64,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// Which kind of token a list or lookup is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn table(self) -> &'static str {
        match self {
            Self::Access => "oauth2_access_tokens_v1",
            Self::Refresh => "oauth2_refresh_tokens_v1",
        }
    }
}

/// The properties token lists may filter and sort on (the auth service is camelCase).
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
        path: "applicationId",
        column: "application_id",
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
    Field {
        path: "updateTimestamp",
        column: "update_timestamp",
        field_type: FieldType::Timestamp,
    },
];

fn select(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Access => {
            "SELECT session_id, id, user_id, application_id, refresh_token_id, expiry_timestamp, \
             creation_timestamp, update_timestamp FROM oauth2_access_tokens_v1"
        }
        TokenKind::Refresh => {
            "SELECT session_id, id, user_id, application_id, CAST(NULL AS TEXT) AS refresh_token_id, expiry_timestamp, \
             creation_timestamp, update_timestamp FROM oauth2_refresh_tokens_v1"
        }
    }
}

/// A page of current tokens; `of_user` limits it to one user's.
pub async fn list(
    store: &ReadStore,
    kind: TokenKind,
    query: &Query,
    of_user: Option<&str>,
) -> Result<Page<TokenRow>, QueryError> {
    let from = match kind {
        TokenKind::Access => "FROM oauth2_access_tokens_v1",
        TokenKind::Refresh => "FROM oauth2_refresh_tokens_v1",
    };
    let compiled = List {
        select: select(kind),
        from,
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "session_id",
        visible: crate::sql::of_user(of_user),
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, TokenRow)
}

/// The session and user of the current token with this id.
pub async fn by_id(
    store: &ReadStore,
    kind: TokenKind,
    id: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    let text = format!(
        "SELECT session_id, user_id FROM {} WHERE id = $1",
        kind.table()
    );
    crate::with_pool!(store, pool => {
        sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(text))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}
