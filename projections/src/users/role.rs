//! `roles_v1` and `role_permissions_v1`: global roles and the permissions each grants.

use std::collections::BTreeMap;
use vigil_domain::aggregate::Aggregate;
use vigil_domain::log::Filter;
use vigil_domain::users::role::Role;

use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, RoleEvent};

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static ROLES: Table = Table::new(
    "roles_v1",
    &[
        ("id", Text),
        ("name", Text),
        ("description", Text),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static ROLE_PERMISSIONS: Table = Table::new(
    "role_permissions_v1",
    &[
        ("role_id", Text),
        ("permission", Text),
        ("position", BigInt),
    ],
    2,
);

static TABLES: [&Table; 2] = [&ROLES, &ROLE_PERMISSIONS];

pub struct Roles;

impl Projection for Roles {
    fn name(&self) -> &'static str {
        "roles_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Role::KIND])
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
            let Event::Role(event) = event else { continue };
            match event {
                RoleEvent::Created(e) => changes.upsert(
                    &ROLES,
                    position,
                    [
                        ("id", id.into()),
                        ("name", e.name.clone().into()),
                        ("description", e.description.clone().into()),
                        ("creation_timestamp", at.into()),
                        ("update_timestamp", at.into()),
                    ],
                )?,
                RoleEvent::PermissionsAdded(e) => {
                    for permission in &e.permissions {
                        changes.upsert(
                            &ROLE_PERMISSIONS,
                            position,
                            [
                                ("role_id", id.into()),
                                ("permission", permission.clone().into()),
                            ],
                        )?;
                    }
                    changes.update(
                        &ROLES,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
                RoleEvent::PermissionsRemoved(e) => {
                    for permission in &e.permissions {
                        changes.delete(
                            &ROLE_PERMISSIONS,
                            position,
                            [
                                ("role_id", id.into()),
                                ("permission", permission.clone().into()),
                            ],
                        )?;
                    }
                    changes.update(
                        &ROLES,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
                RoleEvent::Updated(e) => {
                    let mut cells = vec![("id", id.into()), ("update_timestamp", at.into())];
                    if let Some(name) = &e.name {
                        cells.push(("name", name.clone().into()));
                    }
                    if let Some(description) = &e.description {
                        cells.push(("description", description.clone().into()));
                    }
                    changes.update(&ROLES, position, cells)?;
                }
                RoleEvent::Deleted(_) => {
                    changes.delete(&ROLES, position, [("id", id.into())])?;
                    changes.delete_where(&ROLE_PERMISSIONS, position, [("role_id", id.into())])?;
                }
            }
        }
        Ok(())
    }
}

/// A role with its permissions: a global role, or a group role (which names its group).
#[derive(Debug, Clone, PartialEq)]
pub struct RoleRow {
    pub id: String,
    pub group_id: Option<String>,
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// Where one kind of role is kept.
pub(crate) struct RoleTables {
    pub roles: &'static str,
    pub permissions: &'static str,
    /// The group column, for group roles.
    pub group: Option<&'static str>,
}

const GLOBAL: RoleTables = RoleTables {
    roles: "roles_v1",
    permissions: "role_permissions_v1",
    group: None,
};

/// The global roles with the given ids, with their permissions, by id.
pub async fn by_ids(
    store: &ReadStore,
    ids: &[String],
) -> Result<BTreeMap<String, RoleRow>, sqlx::Error> {
    load(store, ids, &GLOBAL).await
}

/// The roles of `tables` with the given ids, with their permissions, by id.
pub(crate) async fn load(
    store: &ReadStore,
    ids: &[String],
    tables: &RoleTables,
) -> Result<BTreeMap<String, RoleRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut sql = Sql::default();
    let list = sql.bind_all(ids.iter().cloned().map(Value::Text));
    let roles_sql = format!(
        "SELECT id, {group}, name, description, creation_timestamp, update_timestamp FROM {roles} \
         WHERE id IN ({list})",
        group = tables.group.unwrap_or("CAST(NULL AS TEXT)"),
        roles = tables.roles,
    );
    let permissions_sql = format!(
        "SELECT role_id, permission FROM {} WHERE role_id IN ({list}) ORDER BY permission",
        tables.permissions
    );
    type Row = (String, Option<String>, String, String, i64, i64);
    let (roles, permissions) = crate::with_pool!(store, pool => {
        let mut roles = sqlx::query_as::<_, Row>(sqlx::AssertSqlSafe(roles_sql));
        let mut permissions = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(permissions_sql));
        for value in &sql.binds {
            roles = crate::bind_value!(roles, value);
            permissions = crate::bind_value!(permissions, value);
        }
        (roles.fetch_all(pool).await?, permissions.fetch_all(pool).await?)
    });
    let mut by_id: BTreeMap<String, RoleRow> = roles
        .into_iter()
        .map(
            |(id, group_id, name, description, creation_timestamp, update_timestamp)| {
                let row = RoleRow {
                    id: id.clone(),
                    group_id,
                    name,
                    description,
                    permissions: Vec::new(),
                    creation_timestamp,
                    update_timestamp,
                };
                (id, row)
            },
        )
        .collect();
    for (role_id, permission) in permissions {
        if let Some(role) = by_id.get_mut(&role_id) {
            role.permissions.push(permission);
        }
    }
    Ok(by_id)
}

/// A page of the roles `list` selects, with their permissions, in the query's order.
pub(crate) async fn page(
    store: &ReadStore,
    list: List<'_>,
    query: &Query,
    tables: &RoleTables,
) -> Result<Page<RoleRow>, QueryError> {
    let compiled = list.compile(store, query)?;
    let page = crate::fetch_page!(store, compiled, (String,))?;
    let ids: Vec<String> = page.data.into_iter().map(|(id,)| id).collect();
    let mut rows = load(store, &ids, tables).await?;
    Ok(Page {
        data: ids.iter().filter_map(|id| rows.remove(id)).collect(),
        total: page.total,
        offset: page.offset,
        limit: page.limit,
    })
}

/// The properties `GET /users/v1/roles` may filter and sort on.
pub const FIELDS: &[Field] = &[
    Field {
        path: "id",
        column: "id",
        field_type: FieldType::Text,
    },
    Field {
        path: "name",
        column: "name",
        field_type: FieldType::Text,
    },
    Field {
        path: "description",
        column: "description",
        field_type: FieldType::Text,
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

fn roles_list() -> List<'static> {
    List {
        select: "SELECT id FROM roles_v1",
        from: "FROM roles_v1",
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
}

/// A page of global roles with their permissions, in the query's order.
pub async fn list(store: &ReadStore, query: &Query) -> Result<Page<RoleRow>, QueryError> {
    page(store, roles_list(), query, &GLOBAL).await
}

/// The ids of every role `query` selects (for bulk operations such as `add_permissions`).
pub async fn matching(store: &ReadStore, query: &Query) -> Result<Vec<String>, QueryError> {
    roles_list().keys(store, query).await
}
