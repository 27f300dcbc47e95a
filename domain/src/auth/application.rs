//! Applications: the client programs every token is bound to. One stream per application
//! (`application-<id>`). Credentials are issued per version; only their digests are kept, except
//! an OAuth1 consumer secret, which signs requests and so is kept sealed under the deployment key.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::{Digest, Id};
use crate::value::Sealed;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub enum ApplicationKind {
    OAuth1,
    OAuth2 {
        /// A confidential client must present its secret at the token endpoint.
        confidential: bool,
        redirect_uris: Vec<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationCreated {
    pub name: String,
    pub description: String,
    pub kind: ApplicationKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationVersionCreated {
    pub version_id: Id,
    pub name: String,
    /// The OAuth2 client id or OAuth1 consumer key (public).
    pub client_id: String,
    /// SHA-256 of the client secret, which is shown once and never stored.
    pub secret_digest: Digest,
}

/// An OAuth1 version's consumer secret, sealed: the server needs it to check request signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ConsumerSecretSealed {
    pub version_id: Id,
    pub secret: Sealed,
}

/// Fields changed; absent ones are unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationUpdated {
    pub name: Option<String>,
    pub description: Option<String>,
    pub logo: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
}

/// The application is gone, and every token bound to it with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationDeleted {}

/// The version's credentials no longer work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ApplicationVersionDeleted {
    pub version_id: Id,
}

events! {
    pub enum ApplicationEvent {
        Created(ApplicationCreated) = "application.created",
        VersionCreated(ApplicationVersionCreated) = "application.version_created",
        Updated(ApplicationUpdated) = "application.updated",
        Deleted(ApplicationDeleted) = "application.deleted",
        VersionDeleted(ApplicationVersionDeleted) = "application.version_deleted",
        ConsumerSecretSealed(ConsumerSecretSealed) = "application.consumer_secret_sealed",
    }
}

/// Changes to an application; `oauth2` must name its type (Extra Horizon requires the type in
/// every update, and it cannot change).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplicationChanges {
    pub oauth2: bool,
    pub name: Option<String>,
    pub description: Option<String>,
    pub logo: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplicationCommand {
    Create {
        name: String,
        description: String,
        kind: ApplicationKind,
    },
    /// Id, client id and secret digest come from the command layer (randomness), and for an
    /// OAuth1 application the sealed consumer secret.
    CreateVersion {
        version_id: Id,
        name: String,
        client_id: String,
        secret_digest: Digest,
        sealed_secret: Option<Sealed>,
    },
    Update(ApplicationChanges),
    Delete,
    /// A version, by id or by name.
    DeleteVersion {
        version: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplicationError {
    #[error("this application already exists")]
    AlreadyExists,
    #[error("application not found")]
    NotFound,
    #[error("the {0} must be 1 to {1} characters, without control characters")]
    InvalidLength(&'static str, usize),
    #[error("this application already has a version with that name")]
    VersionNameUsed,
    #[error("this application has no such version")]
    VersionNotFound,
    #[error("an application's type cannot change")]
    TypeMismatch,
    #[error(
        "an oauth2 application takes at most 50 redirect URIs, each absolute and at most 2048 characters: https, http on the loopback (localhost, 127.0.0.1, [::1]), or a native app's private-use scheme in reverse domain order (com.example.app:/callback)"
    )]
    RedirectUris,
    #[error("an OAuth1 version needs its consumer secret sealed")]
    SecretNotSealed,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
}

impl DomainError for ApplicationError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists | Self::VersionNameUsed => ExhCode::ResourceAlreadyExists,
            Self::NotFound | Self::VersionNotFound => ExhCode::ResourceUnknown,
            Self::InvalidLength(..) | Self::TypeMismatch | Self::RedirectUris => {
                ExhCode::FieldFormat
            }
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::SecretNotSealed => ExhCode::Server,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Application {
    pub created: bool,
    pub deleted: bool,
    pub oauth2: bool,
    /// `(id, name)` of each live version.
    pub versions: Vec<(Id, String)>,
    /// Where an OAuth2 application may receive authorization codes.
    pub redirect_uris: Vec<String>,
}

fn check_redirect_uris(uris: &[String]) -> Result<(), ApplicationError> {
    if uris.len() <= 50 && uris.iter().all(|uri| redirect_uri_allowed(uri)) {
        Ok(())
    } else {
        Err(ApplicationError::RedirectUris)
    }
}

/// Where an authorization code may be sent (RFC 6749 §3.1.2, OAuth 2.0 security BCP §2.1, RFC
/// 8252 §7): an absolute URI without a fragment, over `https`, over `http` only on the loopback,
/// or a native app's private-use scheme (a reverse domain name, `com.example.app`).
pub fn redirect_uri_allowed(uri: &str) -> bool {
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    let fits = uri.len() <= 2048 && parsed.fragment().is_none();
    let place = match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => match parsed.host() {
            Some(url::Host::Domain(domain)) => domain == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        scheme => scheme.contains('.'),
    };
    fits && place
}

/// The longest logo (a URL, or an image as a data URL).
pub const LONGEST_LOGO: usize = 64 * 1024;

fn check_length(field: &'static str, text: &str, max: usize) -> Result<(), ApplicationError> {
    let len = text.chars().count();
    if (1..=max).contains(&len) && !text.trim().is_empty() && !text.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(ApplicationError::InvalidLength(field, max))
    }
}

impl Aggregate for Application {
    const KIND: &'static str = "application";
    type Command = ApplicationCommand;
    type Event = ApplicationEvent;
    type Error = ApplicationError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        // Extra Horizon guards versions with the same permissions as applications.
        let required = match command {
            ApplicationCommand::Create { .. } | ApplicationCommand::CreateVersion { .. } => {
                "CREATE_APPLICATIONS"
            }
            ApplicationCommand::Update(_) => "UPDATE_APPLICATIONS",
            ApplicationCommand::Delete | ApplicationCommand::DeleteVersion { .. } => {
                "DELETE_APPLICATIONS"
            }
        };
        ctx.actor.require(required, ApplicationError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if !matches!(command, ApplicationCommand::Create { .. }) && (!self.created || self.deleted)
        {
            return Err(ApplicationError::NotFound);
        }
        match command {
            ApplicationCommand::Create {
                name,
                description,
                kind,
            } => {
                if self.created {
                    return Err(ApplicationError::AlreadyExists);
                }
                if let ApplicationKind::OAuth2 { redirect_uris, .. } = kind {
                    check_redirect_uris(redirect_uris)?;
                }
                check_length("name", name, 100)?;
                check_length("description", description, 250)?;
                Ok(vec![ApplicationEvent::Created(ApplicationCreated {
                    name: name.clone(),
                    description: description.clone(),
                    kind: kind.clone(),
                })])
            }
            ApplicationCommand::CreateVersion {
                version_id,
                name,
                client_id,
                secret_digest,
                sealed_secret,
            } => {
                check_length("version name", name, 100)?;
                if self.versions.iter().any(|(_, used)| used == name) {
                    return Err(ApplicationError::VersionNameUsed);
                }
                let mut events = vec![ApplicationEvent::VersionCreated(
                    ApplicationVersionCreated {
                        version_id: *version_id,
                        name: name.clone(),
                        client_id: client_id.clone(),
                        secret_digest: *secret_digest,
                    },
                )];
                if !self.oauth2 {
                    let secret = sealed_secret
                        .clone()
                        .ok_or(ApplicationError::SecretNotSealed)?;
                    events.push(ApplicationEvent::ConsumerSecretSealed(
                        ConsumerSecretSealed {
                            version_id: *version_id,
                            secret,
                        },
                    ));
                }
                Ok(events)
            }
            ApplicationCommand::Update(changes) => {
                if changes.oauth2 != self.oauth2 {
                    return Err(ApplicationError::TypeMismatch);
                }
                if let Some(name) = &changes.name {
                    check_length("name", name, 100)?;
                }
                if let Some(description) = &changes.description {
                    check_length("description", description, 250)?;
                }
                let oauth2_only = changes.logo.is_some() || changes.redirect_uris.is_some();
                if oauth2_only && !self.oauth2 {
                    return Err(ApplicationError::TypeMismatch);
                }
                if let Some(uris) = &changes.redirect_uris {
                    check_redirect_uris(uris)?;
                }
                if let Some(logo) = changes.logo.as_deref().filter(|logo| !logo.is_empty()) {
                    check_length("logo", logo, LONGEST_LOGO)?;
                }
                Ok(vec![ApplicationEvent::Updated(ApplicationUpdated {
                    name: changes.name.clone(),
                    description: changes.description.clone(),
                    logo: changes.logo.clone(),
                    redirect_uris: changes.redirect_uris.clone(),
                })])
            }
            ApplicationCommand::Delete => {
                Ok(vec![ApplicationEvent::Deleted(ApplicationDeleted {})])
            }
            ApplicationCommand::DeleteVersion { version } => {
                let (version_id, _) = self
                    .versions
                    .iter()
                    .find(|(id, name)| id.to_string() == *version || name == version)
                    .ok_or(ApplicationError::VersionNotFound)?;
                Ok(vec![ApplicationEvent::VersionDeleted(
                    ApplicationVersionDeleted {
                        version_id: *version_id,
                    },
                )])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            ApplicationEvent::Created(e) => {
                self.created = true;
                if let ApplicationKind::OAuth2 { redirect_uris, .. } = &e.kind {
                    self.oauth2 = true;
                    self.redirect_uris = redirect_uris.clone();
                }
            }
            ApplicationEvent::VersionCreated(e) => {
                self.versions.push((e.version_id, e.name.clone()));
            }
            ApplicationEvent::Updated(e) => {
                if let Some(redirect_uris) = &e.redirect_uris {
                    self.redirect_uris = redirect_uris.clone();
                }
            }
            ApplicationEvent::Deleted(_) => {
                self.deleted = true;
                self.versions.clear();
            }
            ApplicationEvent::VersionDeleted(e) => {
                self.versions.retain(|(id, _)| *id != e.version_id);
            }
            ApplicationEvent::ConsumerSecretSealed(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn create() -> ApplicationCommand {
        ApplicationCommand::Create {
            name: "Vigil".into(),
            description: "The administrator's application".into(),
            kind: ApplicationKind::OAuth2 {
                confidential: true,
                redirect_uris: vec!["https://example.com/callback".into()],
            },
        }
    }

    fn version(name: &str) -> ApplicationCommand {
        ApplicationCommand::CreateVersion {
            version_id: id(5),
            name: name.into(),
            client_id: "c".repeat(40),
            secret_digest: Digest::of(b"secret"),
            sealed_secret: None,
        }
    }

    #[test]
    fn an_application_gets_versions_with_distinct_names() {
        let created = given::<Application>(&[]).when(create()).events();
        let first = given::<Application>(&created).when(version("v1")).events();
        let history: Vec<_> = created.into_iter().chain(first).collect();
        given::<Application>(&history)
            .when(version("v1"))
            .then_err(ApplicationError::VersionNameUsed);
    }

    #[test]
    fn a_deleted_version_frees_its_name_and_is_found_by_id_or_name() {
        let created = given::<Application>(&[]).when(create()).events();
        let first = given::<Application>(&created).when(version("v1")).events();
        let history: Vec<_> = created.into_iter().chain(first).collect();
        let by_name = ApplicationCommand::DeleteVersion {
            version: "v1".into(),
        };
        let deleted = given::<Application>(&history).when(by_name).events();
        let by_id = ApplicationCommand::DeleteVersion {
            version: id(5).to_string(),
        };
        given::<Application>(&history)
            .when(by_id.clone())
            .then(&deleted);
        let history: Vec<_> = history.into_iter().chain(deleted).collect();
        given::<Application>(&history)
            .when(by_id)
            .then_err(ApplicationError::VersionNotFound);
        assert!(
            given::<Application>(&history)
                .when(version("v1"))
                .events()
                .len()
                == 1
        );
    }

    #[test]
    fn an_update_keeps_the_type() {
        let created = given::<Application>(&[]).when(create()).events();
        let as_oauth1 = ApplicationChanges {
            oauth2: false,
            name: Some("Renamed".into()),
            ..ApplicationChanges::default()
        };
        given::<Application>(&created)
            .when(ApplicationCommand::Update(as_oauth1))
            .then_err(ApplicationError::TypeMismatch);
        let rename = ApplicationChanges {
            oauth2: true,
            name: Some("Renamed".into()),
            ..ApplicationChanges::default()
        };
        given::<Application>(&created)
            .when(ApplicationCommand::Update(rename))
            .then(&[ApplicationEvent::Updated(ApplicationUpdated {
                name: Some("Renamed".into()),
                description: None,
                logo: None,
                redirect_uris: None,
            })]);
    }

    #[test]
    fn a_deleted_application_takes_no_more_commands() {
        let created = given::<Application>(&[]).when(create()).events();
        let deleted = given::<Application>(&created)
            .when(ApplicationCommand::Delete)
            .events();
        let history: Vec<_> = created.into_iter().chain(deleted).collect();
        given::<Application>(&history)
            .when(version("v2"))
            .then_err(ApplicationError::NotFound);
    }

    #[test]
    fn a_version_needs_an_application() {
        given::<Application>(&[])
            .when(version("v1"))
            .then_err(ApplicationError::NotFound);
    }

    #[test]
    fn creating_applications_needs_the_permission() {
        let caller = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<Application>(&[])
            .by(caller)
            .when(create())
            .then_err(ApplicationError::NoPermission("CREATE_APPLICATIONS"));
    }

    #[test]
    fn names_are_bounded_not_blank_and_without_control_characters() {
        for name in [
            "x".repeat(101).as_str(),
            "   ",
            "Viewer\u{0}",
            "Line\nbreak",
        ] {
            let command = ApplicationCommand::Create {
                name: name.into(),
                description: "d".into(),
                kind: ApplicationKind::OAuth1,
            };
            given::<Application>(&[])
                .when(command)
                .then_err(ApplicationError::InvalidLength("name", 100));
        }
    }

    #[test]
    fn redirect_uris_are_https_loopback_http_or_a_native_apps_scheme() {
        for allowed in [
            "https://app.example.com/callback",
            "https://app.example.com",
            "http://localhost:3000/callback",
            "http://127.0.0.1:8080/cb",
            "http://[::1]/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert!(redirect_uri_allowed(allowed), "{allowed}");
        }
        for refused in [
            "",
            " ",
            "/callback",
            "http://app.example.com/callback",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://app.example.com/callback#fragment",
            "myapp://callback",
        ] {
            assert!(!redirect_uri_allowed(refused), "{refused}");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(2048));
        assert!(!redirect_uri_allowed(&long));
    }

    #[test]
    fn an_oauth1_version_keeps_its_consumer_secret_sealed() {
        let created = ApplicationEvent::Created(ApplicationCreated {
            name: "CLI".into(),
            description: "d".into(),
            kind: ApplicationKind::OAuth1,
        });
        given::<Application>(std::slice::from_ref(&created))
            .when(version("v1"))
            .then_err(ApplicationError::SecretNotSealed);
        let sealed = ApplicationCommand::CreateVersion {
            version_id: id(5),
            name: "v1".into(),
            client_id: "c".repeat(40),
            secret_digest: Digest::of(b"secret"),
            sealed_secret: Some(Sealed(vec![1, 2, 3])),
        };
        let events = given::<Application>(&[created]).when(sealed).events();
        assert_eq!(
            events.last(),
            Some(&ApplicationEvent::ConsumerSecretSealed(
                ConsumerSecretSealed {
                    version_id: id(5),
                    secret: Sealed(vec![1, 2, 3]),
                }
            ))
        );
    }
}
