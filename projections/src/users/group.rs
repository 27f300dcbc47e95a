//! Groups: `group_roles_v1` and `group_role_permissions_v1` (the roles of each group), and the
//! enlistments of users in groups: `staff_enlistments_v1` with `staff_enlistment_roles_v1`, and
//! `patient_enlistments_v1`.

use std::collections::BTreeMap;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::log::Filter;
use vigil_domain::users::group::Group;
use vigil_domain::users::user::User;

use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, GroupEvent, UserEvent};

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::Sql;
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};
use crate::users::role::{self, RoleRow, RoleTables};

pub static GROUP_ROLES: Table = Table::new(
    "group_roles_v1",
    &[
        ("id", Text),
        ("group_id", Text),
        ("name", Text),
        ("description", Text),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static GROUP_ROLE_PERMISSIONS: Table = Table::new(
    "group_role_permissions_v1",
    &[
        ("role_id", Text),
        ("permission", Text),
        ("position", BigInt),
    ],
    2,
);

pub static STAFF: Table = Table::new(
    "staff_enlistments_v1",
    &[
        ("user_id", Text),
        ("group_id", Text),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

pub static STAFF_ROLES: Table = Table::new(
    "staff_enlistment_roles_v1",
    &[
        ("user_id", Text),
        ("group_id", Text),
        ("role_id", Text),
        ("position", BigInt),
    ],
    3,
);

pub static PATIENTS: Table = Table::new(
    "patient_enlistments_v1",
    &[
        ("user_id", Text),
        ("group_id", Text),
        ("expiry_timestamp", BigInt),
        ("creation_timestamp", BigInt),
        ("position", BigInt),
    ],
    2,
);

static TABLES: [&Table; 5] = [
    &GROUP_ROLES,
    &GROUP_ROLE_PERMISSIONS,
    &STAFF,
    &STAFF_ROLES,
    &PATIENTS,
];

pub struct Groups;

impl Projection for Groups {
    fn name(&self) -> &'static str {
        "groups_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Group::KIND, User::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        // The stream key of an aggregate is its id: a group's or a user's.
        let id = recorded.commit.stream.key();
        let at = recorded.commit.recorded_at.millis();
        let position = recorded.position;
        for event in &recorded.commit.events {
            match event {
                Event::Group(event) => apply_group(id, at, position, event, changes)?,
                Event::User(event) => apply_user(id, at, position, event, changes)?,
                _ => {}
            }
        }
        Ok(())
    }
}

fn apply_group(
    group: &str,
    at: i64,
    position: u64,
    event: &GroupEvent,
    changes: &mut Changes,
) -> Result<(), ProjectionError> {
    match event {
        GroupEvent::RoleCreated(e) => changes.upsert(
            &GROUP_ROLES,
            position,
            [
                ("id", e.role_id.to_string().into()),
                ("group_id", group.into()),
                ("name", e.name.clone().into()),
                ("description", e.description.clone().into()),
                ("creation_timestamp", at.into()),
                ("update_timestamp", at.into()),
            ],
        )?,
        GroupEvent::RoleUpdated(e) => {
            let mut cells = vec![
                ("id", e.role_id.to_string().into()),
                ("update_timestamp", at.into()),
            ];
            if let Some(name) = &e.name {
                cells.push(("name", name.clone().into()));
            }
            if let Some(description) = &e.description {
                cells.push(("description", description.clone().into()));
            }
            changes.update(&GROUP_ROLES, position, cells)?;
        }
        GroupEvent::RolePermissionsAdded(e) => {
            role_permissions(at, position, (e.role_id, &e.permissions), true, changes)?;
        }
        GroupEvent::RolePermissionsRemoved(e) => {
            role_permissions(at, position, (e.role_id, &e.permissions), false, changes)?;
        }
        GroupEvent::RoleDeleted(e) => {
            let role: Value = e.role_id.to_string().into();
            changes.delete(&GROUP_ROLES, position, [("id", role.clone())])?;
            changes.delete_where(
                &GROUP_ROLE_PERMISSIONS,
                position,
                [("role_id", role.clone())],
            )?;
            // A deleted role is no longer held by anyone.
            changes.delete_where(&STAFF_ROLES, position, [("role_id", role)])?;
        }
    }
    Ok(())
}

/// Permissions given to (`added`) or taken from a group role.
fn role_permissions(
    at: i64,
    position: u64,
    (role_id, permissions): (vigil_domain::id::Id, &[String]),
    added: bool,
    changes: &mut Changes,
) -> Result<(), ProjectionError> {
    let role: Value = role_id.to_string().into();
    for permission in permissions {
        let key = [
            ("role_id", role.clone()),
            ("permission", permission.clone().into()),
        ];
        if added {
            changes.upsert(&GROUP_ROLE_PERMISSIONS, position, key)?;
        } else {
            changes.delete(&GROUP_ROLE_PERMISSIONS, position, key)?;
        }
    }
    changes.update(
        &GROUP_ROLES,
        position,
        [("id", role), ("update_timestamp", at.into())],
    )?;
    Ok(())
}

fn apply_user(
    user: &str,
    at: i64,
    position: u64,
    event: &UserEvent,
    changes: &mut Changes,
) -> Result<(), ProjectionError> {
    match event {
        UserEvent::StaffEnlisted(e) => changes.upsert(
            &STAFF,
            position,
            [
                ("user_id", user.into()),
                ("group_id", e.group_id.to_string().into()),
                ("creation_timestamp", at.into()),
                ("update_timestamp", at.into()),
            ],
        )?,
        UserEvent::StaffRemoved(e) => {
            let group: Value = e.group_id.to_string().into();
            changes.delete(
                &STAFF,
                position,
                [("user_id", user.into()), ("group_id", group.clone())],
            )?;
            changes.delete_where(
                &STAFF_ROLES,
                position,
                [("user_id", user.into()), ("group_id", group)],
            )?;
        }
        UserEvent::StaffRolesAdded(e) => {
            staff_roles(user, at, position, (e.group_id, &e.role_ids), true, changes)?;
        }
        UserEvent::StaffRolesRemoved(e) => {
            staff_roles(
                user,
                at,
                position,
                (e.group_id, &e.role_ids),
                false,
                changes,
            )?;
        }
        UserEvent::PatientEnlisted(e) => changes.upsert(
            &PATIENTS,
            position,
            [
                ("user_id", user.into()),
                ("group_id", e.group_id.to_string().into()),
                ("expiry_timestamp", e.expires_at.map(|t| t.millis()).into()),
                ("creation_timestamp", at.into()),
            ],
        )?,
        UserEvent::PatientRemoved(e) => changes.delete(
            &PATIENTS,
            position,
            [
                ("user_id", user.into()),
                ("group_id", e.group_id.to_string().into()),
            ],
        )?,
        UserEvent::Deleted(_) => {
            for table in [&STAFF, &STAFF_ROLES, &PATIENTS] {
                changes.delete_where(table, position, [("user_id", user.into())])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Group roles given to (`added`) or taken from a staff member in a group.
fn staff_roles(
    user: &str,
    at: i64,
    position: u64,
    (group_id, role_ids): (vigil_domain::id::Id, &[vigil_domain::id::Id]),
    added: bool,
    changes: &mut Changes,
) -> Result<(), ProjectionError> {
    let group: Value = group_id.to_string().into();
    for role in role_ids {
        let key = [
            ("user_id", user.into()),
            ("group_id", group.clone()),
            ("role_id", role.to_string().into()),
        ];
        if added {
            changes.upsert(&STAFF_ROLES, position, key)?;
        } else {
            changes.delete(&STAFF_ROLES, position, key)?;
        }
    }
    changes.update(
        &STAFF,
        position,
        [
            ("user_id", user.into()),
            ("group_id", group),
            ("update_timestamp", at.into()),
        ],
    )?;
    Ok(())
}

const GROUP_ROLE_TABLES: RoleTables = RoleTables {
    roles: "group_roles_v1",
    permissions: "group_role_permissions_v1",
    group: Some("group_id"),
};

/// The group roles with the given ids, with their permissions, by id.
pub async fn roles_by_ids(
    store: &ReadStore,
    ids: &[String],
) -> Result<BTreeMap<String, RoleRow>, sqlx::Error> {
    role::load(store, ids, &GROUP_ROLE_TABLES).await
}

fn roles_list(group_id: &str) -> List<'static> {
    let mut visible = Sql::default();
    visible.text = format!("group_id = {}", visible.bind(group_id.into()));
    List {
        select: "SELECT id FROM group_roles_v1",
        from: "FROM group_roles_v1",
        // The group is the path's; a group role is queried like a global one.
        fields: role::FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: Some(visible),
        limits: Limits::STANDARD,
    }
}

/// A page of a group's roles with their permissions, in the query's order.
pub async fn list_roles(
    store: &ReadStore,
    group_id: &str,
    query: &Query,
) -> Result<Page<RoleRow>, QueryError> {
    role::page(store, roles_list(group_id), query, &GROUP_ROLE_TABLES).await
}

/// The ids of a group's roles that `query` selects (all of them without a filter).
pub async fn matching_roles(
    store: &ReadStore,
    group_id: &str,
    query: &Query,
) -> Result<Vec<String>, QueryError> {
    roles_list(group_id).keys(store, query).await
}

/// A user's enlistment as staff of a group, with the ids of the group roles held there.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffRow {
    pub user_id: String,
    pub group_id: String,
    pub role_ids: Vec<String>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// A user's enlistment as patient of a group.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PatientRow {
    pub user_id: String,
    pub group_id: String,
    pub expiry_timestamp: Option<i64>,
    pub creation_timestamp: i64,
}

/// The staff and patient enlistments of each of `user_ids`, in group order.
pub async fn enlistments(
    store: &ReadStore,
    user_ids: &[String],
) -> Result<(Vec<StaffRow>, Vec<PatientRow>), sqlx::Error> {
    if user_ids.is_empty() {
        return Ok((vec![], vec![]));
    }
    let mut sql = Sql::default();
    let list = sql.bind_all(user_ids.iter().cloned().map(Value::Text));
    let staff_sql = format!(
        "SELECT user_id, group_id, creation_timestamp, update_timestamp FROM staff_enlistments_v1 \
         WHERE user_id IN ({list}) ORDER BY user_id, group_id"
    );
    let roles_sql = format!(
        "SELECT user_id, group_id, role_id FROM staff_enlistment_roles_v1 \
         WHERE user_id IN ({list}) ORDER BY user_id, group_id, role_id"
    );
    let patients_sql = format!(
        "SELECT user_id, group_id, expiry_timestamp, creation_timestamp FROM patient_enlistments_v1 \
         WHERE user_id IN ({list}) ORDER BY user_id, group_id"
    );
    let (staff, roles, patients) = crate::with_pool!(store, pool => {
        let mut staff = sqlx::query_as::<_, (String, String, i64, i64)>(sqlx::AssertSqlSafe(staff_sql));
        let mut roles = sqlx::query_as::<_, (String, String, String)>(sqlx::AssertSqlSafe(roles_sql));
        let mut patients = sqlx::query_as::<_, PatientRow>(sqlx::AssertSqlSafe(patients_sql));
        for value in &sql.binds {
            staff = crate::bind_value!(staff, value);
            roles = crate::bind_value!(roles, value);
            patients = crate::bind_value!(patients, value);
        }
        (
            staff.fetch_all(pool).await?,
            roles.fetch_all(pool).await?,
            patients.fetch_all(pool).await?,
        )
    });
    let mut held: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (user, group, role) in roles {
        held.entry((user, group)).or_default().push(role);
    }
    let staff = staff
        .into_iter()
        .map(
            |(user_id, group_id, creation_timestamp, update_timestamp)| StaffRow {
                role_ids: held
                    .remove(&(user_id.clone(), group_id.clone()))
                    .unwrap_or_default(),
                user_id,
                group_id,
                creation_timestamp,
                update_timestamp,
            },
        )
        .collect();
    Ok((staff, patients))
}
