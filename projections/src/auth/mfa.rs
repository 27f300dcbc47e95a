//! `mfa_users_v1` and `mfa_methods_v1`: who has MFA enabled, and each user's MFA methods. Secrets
//! are never here (not even sealed): the log keeps the sealed TOTP secrets and the keyed digests
//! of recovery codes. Failed attempts and challenges are in the log too.

use vigil_domain::aggregate::Aggregate;
use vigil_domain::auth::mfa::Mfa;
use vigil_domain::commit::Recorded;
use vigil_domain::event::{Event, MfaEvent};
use vigil_domain::log::Filter;

use crate::runner::{Projection, ProjectionError};
use crate::table::{Changes, ColumnType::*, Table};

pub static MFA_USERS: Table = Table::new(
    "mfa_users_v1",
    &[
        ("user_id", Text),
        ("enabled", Bool),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

pub static MFA_METHODS: Table = Table::new(
    "mfa_methods_v1",
    &[
        ("id", Text),
        ("user_id", Text),
        ("type", Text),
        ("name", Text),
        ("tags", Json),
        ("verified", Bool),
        ("creation_timestamp", BigInt),
        ("update_timestamp", BigInt),
        ("position", BigInt),
    ],
    1,
);

static TABLES: [&Table; 2] = [&MFA_USERS, &MFA_METHODS];

pub struct MfaSettings;

impl Projection for MfaSettings {
    fn name(&self) -> &'static str {
        "mfa_v1"
    }

    fn filter(&self) -> Filter {
        Filter::Kinds(&[Mfa::KIND])
    }

    fn tables(&self) -> &'static [&'static Table] {
        &TABLES
    }

    fn apply(&self, recorded: &Recorded, changes: &mut Changes) -> Result<(), ProjectionError> {
        let user = recorded.commit.stream.key();
        let position = recorded.position;
        for event in &recorded.commit.events {
            let Event::Mfa(event) = event else {
                continue;
            };
            match event {
                MfaEvent::MethodAdded(e) => changes.upsert(
                    &MFA_METHODS,
                    position,
                    [
                        ("id", e.method_id.to_string().into()),
                        ("user_id", user.into()),
                        ("type", e.secret.method_type().wire_name().into()),
                        ("name", e.name.clone().into()),
                        ("tags", serde_json::json!(e.tags).into()),
                        ("verified", false.into()),
                        ("creation_timestamp", e.at.millis().into()),
                        ("update_timestamp", e.at.millis().into()),
                    ],
                )?,
                MfaEvent::MethodVerified(e) => changes.update(
                    &MFA_METHODS,
                    position,
                    [
                        ("id", e.method_id.to_string().into()),
                        ("verified", true.into()),
                        ("update_timestamp", e.at.millis().into()),
                    ],
                )?,
                MfaEvent::MethodRemoved(e) => changes.delete(
                    &MFA_METHODS,
                    position,
                    [("id", e.method_id.to_string().into())],
                )?,
                MfaEvent::Enabled(e) | MfaEvent::Disabled(e) => changes.upsert(
                    &MFA_USERS,
                    position,
                    [
                        ("user_id", user.into()),
                        ("enabled", matches!(event, MfaEvent::Enabled(_)).into()),
                        ("update_timestamp", e.at.millis().into()),
                    ],
                )?,
                MfaEvent::ChallengeIssued(_)
                | MfaEvent::ChallengePassed(_)
                | MfaEvent::AttemptFailed(_) => {}
            }
        }
        Ok(())
    }
}
