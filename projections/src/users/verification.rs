//! `verification_requests_v1` and `verification_codes_v1`: the pending activation and
//! password-reset requests of each user (`GET /users/v1/activation_requests`,
//! `/forgot_password_requests`), one row per user and purpose, until the mailed code is used, an
//! administrator clears the run, the address changes or the user is deleted. The codes table keeps
//! when the code mailed for each pending request expires (never the code, nor its digest).
//!
//! A row is named by the first request of its run (what `DELETE …/{id}` takes); a run begun before
//! codes had modes (`user.verification_requested`) is named by its latest request and has no
//! `request_count`.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, UserEvent};
use vigil_domain::id::Id;
use vigil_domain::log::Filter;
use vigil_domain::users::user::User;
use vigil_domain::users::verification::{Mode, Purpose};

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static VERIFICATION_REQUESTS: Table = Table::new(
    "verification_requests_v1",
    &[
        ("user_id", Text),
        ("purpose", Text),
        ("id", Text),
        ("request_id", Text),
        ("mode", Text),
        ("request_count", BigInt),
        ("last_request_timestamp", BigInt),
        ("failed_attempts", BigInt),
        ("last_failed_attempt_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

pub static VERIFICATION_CODES: Table = Table::new(
    "verification_codes_v1",
    &[
        ("request_id", Text),
        ("user_id", Text),
        ("purpose", Text),
        ("expiry_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 2] = [&VERIFICATION_REQUESTS, &VERIFICATION_CODES];

/// The `purpose` column's value.
pub fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Activation => "activation",
        Purpose::PasswordReset => "password_reset",
    }
}

pub struct VerificationRequests;

impl VerificationRequests {
    /// Forgets the user's requests for `purposes`, and their codes.
    fn forget(
        changes: &mut Changes,
        position: u64,
        user: &str,
        purposes: &[Purpose],
    ) -> Result<(), ProjectionError> {
        for purpose in purposes {
            let key = [
                ("user_id", user.into()),
                ("purpose", purpose_name(*purpose).into()),
            ];
            changes.delete(&VERIFICATION_REQUESTS, position, key.clone())?;
            changes.delete_where(&VERIFICATION_CODES, position, key)?;
        }
        Ok(())
    }

    /// Records a new request's code row (its expiry comes when the code is issued), replacing
    /// the codes of the user's earlier requests for `purpose`.
    fn code_row(
        changes: &mut Changes,
        position: u64,
        user: &str,
        purpose: Purpose,
        request_id: String,
    ) -> Result<(), ProjectionError> {
        changes.delete_where(
            &VERIFICATION_CODES,
            position,
            [
                ("user_id", user.into()),
                ("purpose", purpose_name(purpose).into()),
            ],
        )?;
        changes.upsert(
            &VERIFICATION_CODES,
            position,
            [
                ("request_id", request_id.into()),
                ("user_id", user.into()),
                ("purpose", purpose_name(purpose).into()),
            ],
        )?;
        Ok(())
    }
}

impl Projection for VerificationRequests {
    fn name(&self) -> &'static str {
        "verification_requests_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[User::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let user = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        let both = [Purpose::Activation, Purpose::PasswordReset];
        for event in &recorded.commit.events {
            let Event::User(event) = event else {
                continue;
            };
            match event {
                UserEvent::CodeRequested(e) => {
                    Self::code_row(changes, position, user, e.purpose, e.request_id.to_string())?;
                    changes.upsert(
                        &VERIFICATION_REQUESTS,
                        position,
                        [
                            ("user_id", user.into()),
                            ("purpose", purpose_name(e.purpose).into()),
                            ("id", e.first_request_id.to_string().into()),
                            ("request_id", e.request_id.to_string().into()),
                            ("mode", e.mode.as_str().into()),
                            ("request_count", i64::from(e.initiations).into()),
                            ("last_request_timestamp", e.at.millis().into()),
                            ("failed_attempts", 0i64.into()),
                            ("creation_timestamp", e.first_requested_at.millis().into()),
                            ("update_timestamp", at.into()),
                        ],
                    )?;
                }
                UserEvent::VerificationRequested(e) => {
                    Self::code_row(changes, position, user, e.purpose, e.request_id.to_string())?;
                    changes.upsert(
                        &VERIFICATION_REQUESTS,
                        position,
                        [
                            ("user_id", user.into()),
                            ("purpose", purpose_name(e.purpose).into()),
                            ("id", e.request_id.to_string().into()),
                            ("request_id", e.request_id.to_string().into()),
                            ("mode", Mode::Hash.as_str().into()),
                            ("last_request_timestamp", e.at.millis().into()),
                            ("failed_attempts", 0i64.into()),
                            ("creation_timestamp", e.at.millis().into()),
                            ("update_timestamp", at.into()),
                        ],
                    )?;
                }
                UserEvent::VerificationCodeIssued(e) => changes.update(
                    &VERIFICATION_CODES,
                    position,
                    [
                        ("request_id", e.request_id.to_string().into()),
                        ("expiry_timestamp", e.expires_at.millis().into()),
                    ],
                )?,
                UserEvent::PinFailed(e) => changes.update(
                    &VERIFICATION_REQUESTS,
                    position,
                    [
                        ("user_id", user.into()),
                        ("purpose", purpose_name(e.purpose).into()),
                        ("failed_attempts", i64::from(e.failed_attempts).into()),
                        ("last_failed_attempt_timestamp", e.at.millis().into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                UserEvent::VerificationCleared(e) => {
                    Self::forget(changes, position, user, &[e.purpose])?;
                }
                UserEvent::Activated(_) => {
                    Self::forget(changes, position, user, &[Purpose::Activation])?;
                }
                UserEvent::PasswordReset(_) => {
                    Self::forget(changes, position, user, &[Purpose::PasswordReset])?;
                }
                // A new address starts over; a deleted user has nothing pending.
                UserEvent::EmailChanged(_) | UserEvent::Deleted(_) => {
                    Self::forget(changes, position, user, &both)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A pending request as the user service lists it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VerificationRequestRow {
    pub id: String,
    pub user_id: String,
    pub mode: String,
    pub request_count: Option<i64>,
    pub last_request_timestamp: i64,
    pub failed_attempts: i64,
    pub last_failed_attempt_timestamp: Option<i64>,
    pub expiry_timestamp: Option<i64>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// The properties request lists may filter and sort on (the user service is snake_case).
const FIELDS: &[Field] = &[
    Field {
        path: "id",
        column: "r.id",
        field_type: FieldType::Text,
    },
    Field {
        path: "user_id",
        column: "r.user_id",
        field_type: FieldType::Text,
    },
    Field {
        path: "mode",
        column: "r.mode",
        field_type: FieldType::Text,
    },
    Field {
        path: "request_count",
        column: "r.request_count",
        field_type: FieldType::Integer,
    },
    Field {
        path: "last_request_timestamp",
        column: "r.last_request_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "failed_attempts",
        column: "r.failed_attempts",
        field_type: FieldType::Integer,
    },
    Field {
        path: "last_failed_attempt_timestamp",
        column: "r.last_failed_attempt_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "expiry_timestamp",
        column: "c.expiry_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "creation_timestamp",
        column: "r.creation_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "update_timestamp",
        column: "r.update_timestamp",
        field_type: FieldType::Timestamp,
    },
];

const FROM: &str = "FROM verification_requests_v1 r \
                    LEFT JOIN verification_codes_v1 c ON c.request_id = r.request_id";

fn of_purpose(purpose: Purpose) -> Sql {
    let mut sql = Sql::default();
    sql.text = format!(
        "r.purpose = {}",
        sql.bind(Value::Text(purpose_name(purpose).to_owned()))
    );
    sql
}

/// A page of the pending requests for `purpose`.
pub async fn list(
    store: &ReadStore,
    purpose: Purpose,
    query: &Query,
) -> Result<Page<VerificationRequestRow>, QueryError> {
    let compiled = List {
        select: "SELECT r.id, r.user_id, r.mode, r.request_count, r.last_request_timestamp, \
                 r.failed_attempts, r.last_failed_attempt_timestamp, c.expiry_timestamp, \
                 r.creation_timestamp, r.update_timestamp \
                 FROM verification_requests_v1 r \
                 LEFT JOIN verification_codes_v1 c ON c.request_id = r.request_id",
        from: FROM,
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "r.id",
        visible: Some(of_purpose(purpose)),
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, VerificationRequestRow)
}

/// The user whose pending request for `purpose` is named `id`.
pub async fn owner(
    store: &ReadStore,
    purpose: Purpose,
    id: Id,
) -> Result<Option<String>, QueryError> {
    let query = crate::rql::parse(&format!("eq(id,{id})"))?;
    let page = list(store, purpose, &query).await?;
    Ok(page.data.into_iter().next().map(|row| row.user_id))
}
