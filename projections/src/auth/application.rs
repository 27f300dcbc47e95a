//! `applications_v1` and `application_versions_v1`: OAuth client programs and their credentials
//! (client ids in clear, secrets only as SHA-256 digests).

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::application::Application;
use vigil_domain::auth::application::ApplicationKind;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{ApplicationEvent, Event};
use vigil_domain::log::Filter;

use crate::json_sql::Indexes;
use crate::page::{Limits, List, Page, QueryError};
use crate::rql::Query;
use crate::runner::{Projection, ProjectionError};
use crate::sql::{Field, FieldType, Sql};
use crate::store::ReadStore;
use crate::table::{Changes, ColumnType::*, Table, Value};

pub static APPLICATIONS: Table = Table::new(
    "applications_v1",
    &[
        ("id", Text),
        ("name", Text),
        ("description", Text),
        ("type", Text),
        ("confidential", Bool),
        ("redirect_uris", Json),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
        ("logo", Text),
    ],
    1,
);

pub static VERSIONS: Table = Table::new(
    "application_versions_v1",
    &[
        ("id", Text),
        ("application_id", Text),
        ("name", Text),
        ("client_id", Text),
        ("secret_digest", Text),
        ("creation_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 2] = [&APPLICATIONS, &VERSIONS];

pub struct Applications;

impl Projection for Applications {
    fn name(&self) -> &'static str {
        "applications_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Application::KIND])
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
            let Event::Application(event) = event else {
                continue;
            };
            match event {
                ApplicationEvent::Created(e) => {
                    let (kind, confidential, redirect_uris) = match &e.kind {
                        ApplicationKind::OAuth1 => ("oauth1", false, Vec::new()),
                        ApplicationKind::OAuth2 {
                            confidential,
                            redirect_uris,
                        } => ("oauth2", *confidential, redirect_uris.clone()),
                    };
                    changes.upsert(
                        &APPLICATIONS,
                        position,
                        [
                            ("id", id.into()),
                            ("name", e.name.clone().into()),
                            ("description", e.description.clone().into()),
                            ("type", kind.into()),
                            ("confidential", confidential.into()),
                            ("redirect_uris", serde_json::json!(redirect_uris).into()),
                            ("creation_timestamp", at.into()),
                            ("update_timestamp", at.into()),
                        ],
                    )?;
                }
                ApplicationEvent::VersionCreated(e) => {
                    changes.upsert(
                        &VERSIONS,
                        position,
                        [
                            ("id", e.version_id.to_string().into()),
                            ("application_id", id.into()),
                            ("name", e.name.clone().into()),
                            ("client_id", e.client_id.as_str().into()),
                            ("secret_digest", e.secret_digest.to_string().into()),
                            ("creation_timestamp", at.into()),
                        ],
                    )?;
                    changes.update(
                        &APPLICATIONS,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
                ApplicationEvent::Updated(e) => {
                    let mut cells = vec![("id", id.into()), ("update_timestamp", at.into())];
                    if let Some(name) = &e.name {
                        cells.push(("name", name.clone().into()));
                    }
                    if let Some(description) = &e.description {
                        cells.push(("description", description.clone().into()));
                    }
                    if let Some(logo) = &e.logo {
                        cells.push(("logo", logo.clone().into()));
                    }
                    if let Some(uris) = &e.redirect_uris {
                        cells.push(("redirect_uris", serde_json::json!(uris).into()));
                    }
                    changes.update(&APPLICATIONS, position, cells)?;
                }
                ApplicationEvent::Deleted(_) => {
                    changes.delete(&APPLICATIONS, position, [("id", id.into())])?;
                    changes.delete_where(&VERSIONS, position, [("application_id", id.into())])?;
                }
                ApplicationEvent::VersionDeleted(e) => {
                    changes.delete(
                        &VERSIONS,
                        position,
                        [("id", e.version_id.to_string().into())],
                    )?;
                    changes.update(
                        &APPLICATIONS,
                        position,
                        [("id", id.into()), ("update_timestamp", at.into())],
                    )?;
                }
                // The sealed consumer secret stays in the log.
                ApplicationEvent::ConsumerSecretSealed(_) => {}
            }
        }
        Ok(())
    }
}

/// An application as the read model holds it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApplicationRow {
    pub id: String,
    pub name: String,
    pub description: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub confidential: bool,
    /// A JSON array of strings.
    pub redirect_uris: String,
    pub logo: Option<String>,
    pub creation_timestamp: i64,
    pub update_timestamp: i64,
}

/// A version of an application (its secret is never readable).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VersionRow {
    pub id: String,
    pub application_id: String,
    pub name: String,
    pub client_id: String,
    pub creation_timestamp: i64,
}

/// The properties `GET /auth/v2/applications` may filter and sort on.
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
        path: "type",
        column: "type",
        field_type: FieldType::Text,
    },
    Field {
        path: "confidential",
        column: "confidential",
        field_type: FieldType::Bool,
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

pub async fn list(store: &ReadStore, query: &Query) -> Result<Page<ApplicationRow>, QueryError> {
    let compiled = List {
        select: "SELECT id, name, description, type, confidential, CAST(redirect_uris AS TEXT) AS redirect_uris, \
                 logo, creation_timestamp, update_timestamp FROM applications_v1",
        from: "FROM applications_v1",
        fields: FIELDS,
        relations: &[],
        json: &[],
        indexed: Indexes::NONE,
        tiebreak: "id",
        visible: None,
        limits: Limits::STANDARD,
    }
    .compile(store, query)?;
    crate::fetch_page!(store, compiled, ApplicationRow)
}

/// The versions of `application_ids`, oldest first.
pub async fn versions(
    store: &ReadStore,
    application_ids: &[String],
) -> Result<Vec<VersionRow>, sqlx::Error> {
    if application_ids.is_empty() {
        return Ok(vec![]);
    }
    let mut sql = Sql::default();
    let text = format!(
        "SELECT id, application_id, name, client_id, creation_timestamp FROM application_versions_v1 \
         WHERE application_id IN ({}) ORDER BY creation_timestamp, id",
        sql.bind_all(application_ids.iter().cloned().map(Value::Text))
    );
    crate::with_pool!(store, pool => {
        let mut query = sqlx::query_as::<_, VersionRow>(sqlx::AssertSqlSafe(text));
        for value in &sql.binds {
            query = crate::bind_value!(query, value);
        }
        query.fetch_all(pool).await
    })
}
