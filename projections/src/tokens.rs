//! `oauth2_access_tokens_v1` and `oauth2_refresh_tokens_v1`: the current tokens of each login
//! session, found by the SHA-256 digest of the presented token.

use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, SessionEvent, UserEvent};
use vigil_domain::session::IssuedToken;

use crate::runner::{Projection, ProjectionError};
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
                // A deleted user is logged out everywhere.
                Event::User(UserEvent::Deleted(_)) => {
                    for table in TABLES {
                        changes.delete_where(table, position, "user_id", session.into())?;
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
            }
        }
        Ok(())
    }
}
