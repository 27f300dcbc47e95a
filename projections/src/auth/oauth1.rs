//! `oauth1_tokens_v1`: the OAuth1 tokens still valid (a revoked one is removed; the log keeps it).
//! Neither the token nor its secret is here.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::Application;
use vigil_domain::auth::oauth1::OAuth1Token;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{ApplicationEvent, Event, OAuth1TokenEvent, UserEvent};
use vigil_domain::log::Filter;
use vigil_domain::users::user::{KeptLogin, User};

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table};

pub static OAUTH1_TOKENS: Table = Table::new(
    "oauth1_tokens_v1",
    &[
        ("id", Text),
        ("user_id", Text),
        ("application_id", Text),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 1] = [&OAUTH1_TOKENS];

pub struct OAuth1Tokens;

impl Projection for OAuth1Tokens {
    fn name(&self) -> &'static str {
        "oauth1_tokens_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[OAuth1Token::KIND, User::KIND, Application::KIND])
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
                Event::OAuth1Token(OAuth1TokenEvent::Created(e)) => changes.upsert(
                    &OAUTH1_TOKENS,
                    position,
                    [
                        ("id", id.into()),
                        ("user_id", e.user_id.to_string().into()),
                        ("application_id", e.application_id.to_string().into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                Event::OAuth1Token(OAuth1TokenEvent::Revoked(_)) => {
                    changes.delete(&OAUTH1_TOKENS, position, [("id", id.into())])?;
                }
                // Logged out everywhere.
                Event::User(
                    UserEvent::Deleted(_)
                    | UserEvent::PasswordReset(_)
                    | UserEvent::OidcLinked(_)
                    | UserEvent::OidcUnlinked(_),
                ) => {
                    changes.delete_where(&OAUTH1_TOKENS, position, [("user_id", id.into())])?;
                }
                // A user who changed their password is logged out everywhere else.
                Event::User(UserEvent::LoggedOutElsewhere(e)) => {
                    let kept = match e.kept {
                        KeptLogin::OAuth1Token(kept) => Some(("id", kept.to_string().into())),
                        KeptLogin::Session(_) | KeptLogin::None => None,
                    };
                    changes.delete_where_except(
                        &OAUTH1_TOKENS,
                        position,
                        [("user_id", id.into())],
                        kept,
                    )?;
                }
                Event::Application(ApplicationEvent::Deleted(_)) => {
                    changes.delete_where(
                        &OAUTH1_TOKENS,
                        position,
                        [("application_id", id.into())],
                    )?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A token as `GET /auth/v2/oauth1/tokens` lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OAuth1TokenRow {
    pub id: String,
    pub user_id: String,
    pub application_id: String,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// A page of valid OAuth1 tokens; `of_user` limits it to one user's.
pub async fn list(
    store: &ReadStore,
    query: &Query,
    of_user: Option<&str>,
) -> Result<Page<OAuth1TokenRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, user_id, application_id, creation_timestamp, update_timestamp \
                 FROM oauth1_tokens_v1",
        from: "FROM oauth1_tokens_v1",
        fields: crate::auth::token::FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: crate::sql::of_user(of_user),
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, OAuth1TokenRow)
}
