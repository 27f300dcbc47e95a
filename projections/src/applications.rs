//! `applications_v1` and `application_versions_v1`: OAuth client programs and their credentials
//! (client ids in clear, secrets only as SHA-256 digests).

use vigil_domain::application::ApplicationKind;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{ApplicationEvent, Event};

use crate::runner::{Projection, ProjectionError};
use crate::table::{Changes, ColumnType::*, Table};

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
            }
        }
        Ok(())
    }
}
