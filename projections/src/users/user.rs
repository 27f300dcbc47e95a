//! `users_v1` and `user_roles_v1`: one row per user, and one per role given to a user.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, LoginEvent, RoleEvent, UserEvent};
use vigil_domain::log::Filter;
use vigil_domain::users::login::{Login, LoginFailed, LoginFailedFrom};
use vigil_domain::users::role::Role;
use vigil_domain::users::user::Optional;
use vigil_domain::users::user::User;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Relation, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static USERS: Table = Table::new(
    "users_v1",
    &[
        ("id", Text),
        ("email", Text),
        ("first_name", Text),
        ("last_name", Text),
        ("phone_number", Text),
        ("language", Text),
        ("time_zone", Text),
        ("activation", Bool),
        ("profile_image", Text),
        ("failed_count", BigInt),
        ("last_failed_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static USER_ROLES: Table = Table::new(
    "user_roles_v1",
    &[
        ("user_id", Text),
        ("role_id", Text),
        ("creation_timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

static TABLES: [&Table; 2] = [&USERS, &USER_ROLES];

pub struct Users;

impl Projection for Users {
    fn name(&self) -> &'static str {
        "users_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[User::KIND, Login::KIND, Role::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        // The stream key of an aggregate is its id.
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let event = match event {
                Event::User(event) => event,
                // A deleted role is no longer held by anyone.
                Event::Role(RoleEvent::Deleted(_)) => {
                    changes.delete_where(&USER_ROLES, position, [("role_id", id.into())])?;
                    continue;
                }
                // Login throttling lives on the address's stream; it names the account it concerns.
                Event::Login(
                    LoginEvent::Failed(LoginFailed {
                        user_id,
                        failed_count,
                        at,
                    })
                    | LoginEvent::FailedFrom(LoginFailedFrom {
                        user_id,
                        failed_count,
                        at,
                        ..
                    }),
                ) => {
                    if let Some(user) = user_id {
                        changes.update(
                            &USERS,
                            position,
                            [
                                ("id", user.to_string().into()),
                                ("failed_count", i64::from(*failed_count).into()),
                                ("last_failed_timestamp", at.millis().into()),
                            ],
                        )?;
                    }
                    continue;
                }
                Event::Login(LoginEvent::Cleared(e)) => {
                    if let Some(user) = e.user_id {
                        changes.update(
                            &USERS,
                            position,
                            [
                                ("id", user.to_string().into()),
                                ("failed_count", 0i64.into()),
                            ],
                        )?;
                    }
                    continue;
                }
                _ => continue,
            };
            match event {
                UserEvent::Registered(e) => changes.upsert(
                    &USERS,
                    position,
                    [
                        ("id", id.into()),
                        ("email", e.email.get().clone().into()),
                        ("first_name", e.first_name.get().clone().into()),
                        ("last_name", e.last_name.get().clone().into()),
                        (
                            "phone_number",
                            e.phone_number.as_ref().map(|p| p.get().clone()).into(),
                        ),
                        ("language", e.language.clone().into()),
                        ("time_zone", e.time_zone.clone().into()),
                        ("activation", e.activated.into()),
                        ("failed_count", 0i64.into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                UserEvent::RolesAdded(e) => {
                    for role in &e.role_ids {
                        changes.upsert(
                            &USER_ROLES,
                            position,
                            [
                                ("user_id", id.into()),
                                ("role_id", role.to_string().into()),
                                ("creation_timestamp", at.into()),
                            ],
                        )?;
                    }
                    changes.update(
                        &USERS,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
                UserEvent::Updated(e) => {
                    let mut cells = vec![("id", id.into()), ("update_timestamp", at.into())];
                    if let Some(first_name) = &e.first_name {
                        cells.push(("first_name", first_name.get().clone().into()));
                    }
                    if let Some(last_name) = &e.last_name {
                        cells.push(("last_name", last_name.get().clone().into()));
                    }
                    match &e.phone_number {
                        Some(Optional::Set(phone)) => {
                            cells.push(("phone_number", phone.get().clone().into()));
                        }
                        Some(Optional::Cleared) => cells.push(("phone_number", Value::Null)),
                        None => {}
                    }
                    if let Some(language) = &e.language {
                        cells.push(("language", language.clone().into()));
                    }
                    if let Some(time_zone) = &e.time_zone {
                        cells.push(("time_zone", time_zone.clone().into()));
                    }
                    changes.update(&USERS, position, cells)?;
                }
                UserEvent::Activated(_) => changes.update(
                    &USERS,
                    position,
                    [
                        ("id", id.into()),
                        ("activation", true.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                UserEvent::EmailChanged(e) => changes.update(
                    &USERS,
                    position,
                    [
                        ("id", id.into()),
                        ("email", e.email.get().clone().into()),
                        ("activation", false.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                UserEvent::ProfileImageSet(e) => changes.update(
                    &USERS,
                    position,
                    [
                        ("id", id.into()),
                        ("profile_image", e.hash.clone().into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                UserEvent::VerificationRequested(_)
                | UserEvent::CodeRequested(_)
                | UserEvent::VerificationCodeIssued(_)
                | UserEvent::VerificationMailSent(_)
                | UserEvent::PinFailed(_)
                | UserEvent::VerificationCleared(_) => {}
                // Links are the `oidc_links_v1` read model's.
                UserEvent::OidcLinked(_)
                | UserEvent::OidcUnlinked(_)
                | UserEvent::LoggedOutElsewhere(_) => {}
                // The enlistments themselves are the `groups_v1` read model's.
                UserEvent::StaffEnlisted(_)
                | UserEvent::StaffRemoved(_)
                | UserEvent::StaffRolesAdded(_)
                | UserEvent::StaffRolesRemoved(_)
                | UserEvent::PatientEnlisted(_)
                | UserEvent::PatientRemoved(_) => changes.update(
                    &USERS,
                    position,
                    [("id", id.into()), ("update_timestamp", at.into())],
                )?,
                UserEvent::PasswordChanged(_) | UserEvent::PasswordReset(_) => changes.update(
                    &USERS,
                    position,
                    [("id", id.into()), ("update_timestamp", at.into())],
                )?,
                UserEvent::Deleted(_) => {
                    changes.delete(&USERS, position, [("id", id.into())])?;
                    changes.delete_where(&USER_ROLES, position, [("user_id", id.into())])?;
                }
                UserEvent::RolesRemoved(e) => {
                    for role in &e.role_ids {
                        changes.delete(
                            &USER_ROLES,
                            position,
                            [("user_id", id.into()), ("role_id", role.to_string().into())],
                        )?;
                    }
                    changes.update(
                        &USERS,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// A user as the read model holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone_number: Option<String>,
    pub language: String,
    pub time_zone: String,
    pub activation: bool,
    pub profile_image: Option<String>,
    pub failed_count: i64,
    pub last_failed_timestamp: Option<i64>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

const SELECT: &str = "SELECT id, email, first_name, last_name, phone_number, language, time_zone, activation, \
    profile_image, failed_count, last_failed_timestamp, creation_timestamp, update_timestamp FROM users_v1";

/// The properties `GET /users/v1/` may filter and sort on.
pub const FIELDS: &[Field] = &[
    Field {
        path: "id",
        column: "id",
        field_type: FieldType::Text,
    },
    Field {
        path: "email",
        column: "email",
        field_type: FieldType::Text,
    },
    Field {
        path: "first_name",
        column: "first_name",
        field_type: FieldType::Text,
    },
    Field {
        path: "last_name",
        column: "last_name",
        field_type: FieldType::Text,
    },
    Field {
        path: "phone_number",
        column: "phone_number",
        field_type: FieldType::Text,
    },
    Field {
        path: "language",
        column: "language",
        field_type: FieldType::Text,
    },
    Field {
        path: "time_zone",
        column: "time_zone",
        field_type: FieldType::Text,
    },
    Field {
        path: "activation",
        column: "activation",
        field_type: FieldType::Bool,
    },
    Field {
        path: "profile_image",
        column: "profile_image",
        field_type: FieldType::Text,
    },
    Field {
        path: "failed_count",
        column: "failed_count",
        field_type: FieldType::Integer,
    },
    Field {
        path: "last_failed_timestamp",
        column: "last_failed_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "creation_timestamp",
        column: "creation_timestamp",
        field_type: FieldType::Timestamp,
    },
    Field {
        path: "update_timestamp",
        column: "update_timestamp",
        field_type: FieldType::Timestamp,
    },
];

/// The lists of objects a user has, for RQL such as `contains(staff_enlistments,eq(group_id,…))`.
pub const RELATIONS: &[Relation] = &[
    Relation {
        path: "staff_enlistments",
        elements: "FROM staff_enlistments_v1 s WHERE s.user_id = users_v1.id",
        fields: &[
            Field {
                path: "group_id",
                column: "s.group_id",
                field_type: FieldType::Text,
            },
            Field {
                path: "creation_timestamp",
                column: "s.creation_timestamp",
                field_type: FieldType::Timestamp,
            },
            Field {
                path: "update_timestamp",
                column: "s.update_timestamp",
                field_type: FieldType::Timestamp,
            },
        ],
    },
    Relation {
        path: "patient_enlistments",
        elements: "FROM patient_enlistments_v1 p WHERE p.user_id = users_v1.id",
        fields: &[
            Field {
                path: "group_id",
                column: "p.group_id",
                field_type: FieldType::Text,
            },
            Field {
                path: "expiry_timestamp",
                column: "p.expiry_timestamp",
                field_type: FieldType::Timestamp,
            },
            Field {
                path: "creation_timestamp",
                column: "p.creation_timestamp",
                field_type: FieldType::Timestamp,
            },
        ],
    },
    Relation {
        path: "roles",
        elements: "FROM user_roles_v1 r WHERE r.user_id = users_v1.id",
        fields: &[Field {
            path: "id",
            column: "r.role_id",
            field_type: FieldType::Text,
        }],
    },
];

/// Groups an enlistment condition applies to.
#[derive(Debug, Clone)]
pub enum InGroups {
    Any,
    Of(Vec<String>),
}

/// Which users a caller may list.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    Only(Vec<String>),
    /// Users with a patient enlistment in `patient` groups or a staff enlistment in `staff`
    /// groups (`None`: not through that kind of enlistment).
    Enlisted {
        patient: Option<InGroups>,
        staff: Option<InGroups>,
    },
}

/// `EXISTS` an enlistment of the user in `table` (in one of the groups), bound into `sql`.
fn enlisted(sql: &mut Sql, table: &str, groups: InGroups) -> String {
    let base = format!("EXISTS (SELECT 1 FROM {table} e WHERE e.user_id = users_v1.id");
    match groups {
        InGroups::Any => format!("{base})"),
        InGroups::Of(ids) if ids.is_empty() => "FALSE".to_owned(),
        InGroups::Of(ids) => {
            let list = sql.bind_all(ids.into_iter().map(Value::Text));
            format!("{base} AND e.group_id IN ({list}))")
        }
    }
}

pub async fn find(store: &ReadStore, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    crate::with_pool!(store, pool => {
        sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

fn list_of(scope: Scope) -> List<'static> {
    let visible = match scope {
        Scope::All => None,
        Scope::Only(ids) if ids.is_empty() => Some(Sql {
            text: "FALSE".into(),
            binds: vec![],
            ..Sql::default()
        }),
        Scope::Only(ids) => {
            let mut sql = Sql::default();
            sql.text = format!("id IN ({})", sql.bind_all(ids.into_iter().map(Value::Text)));
            Some(sql)
        }
        Scope::Enlisted { patient, staff } => {
            let mut sql = Sql::default();
            let mut conditions = Vec::new();
            if let Some(groups) = patient {
                conditions.push(enlisted(&mut sql, "patient_enlistments_v1", groups));
            }
            if let Some(groups) = staff {
                conditions.push(enlisted(&mut sql, "staff_enlistments_v1", groups));
            }
            sql.text = if conditions.is_empty() {
                "FALSE".to_owned()
            } else {
                conditions.join(" OR ")
            };
            Some(sql)
        }
    };
    List {
        select: SELECT,
        from: "FROM users_v1",
        fields: FIELDS,
        relations: RELATIONS,
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible,
        limits: Limits::STANDARD,
    }
}

pub async fn list(
    store: &ReadStore,
    query: &Query,
    scope: Scope,
) -> Result<Page<UserRow>, QueryError> {
    let compiled = list_of(scope).compile(store, query)?;
    crate::fetch_page!(store, compiled, UserRow)
}

/// The ids of every user in `scope` that `query` selects (for bulk operations such as
/// `add_roles`).
pub async fn matching(
    store: &ReadStore,
    query: &Query,
    scope: Scope,
) -> Result<Vec<String>, QueryError> {
    list_of(scope).keys(store, query).await
}

/// The role ids of each of `user_ids`.
pub async fn role_ids(
    store: &ReadStore,
    user_ids: &[String],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    if user_ids.is_empty() {
        return Ok(vec![]);
    }
    let mut sql = Sql::default();
    let text = format!(
        "SELECT user_id, role_id FROM user_roles_v1 WHERE user_id IN ({}) ORDER BY user_id, role_id",
        sql.bind_all(user_ids.iter().cloned().map(Value::Text))
    );
    crate::with_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_all(pool).await
    })
}
