//! OpenID Connect login providers (`oidcprovider-<id>`) and the record of every login through one
//! (`oidclogin-<id>`, one event each). A provider's client secret is sealed under the deployment
//! key before it reaches the log (Vigil must present it to the provider); only its last four
//! characters are shown again.

use serde::{Deserialize, Serialize};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::value::Sealed;

/// Longest client id, client secret and URL a provider may have.
pub const LONGEST_SETTING: usize = 2048;

/// What a provider is configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProviderSettings {
    pub name: String,
    pub description: String,
    pub client_id: String,
    pub client_secret: Sealed,
    /// The secret's last four characters.
    pub client_secret_hint: String,
    pub issuer_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub redirect_uri: String,
}

impl ProviderSettings {
    /// Checks the documented bounds: a name of 3 to 40 of `[A-Za-z0-9_-]`, a description of at
    /// most 256 characters, and absolute http(s) URLs.
    pub fn validate(&self) -> Result<(), OidcProviderError> {
        let invalid = |why: &str| Err(OidcProviderError::InvalidField(why.to_owned()));
        let name_ok = (3..=40).contains(&self.name.chars().count())
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return invalid("name must be 3 to 40 letters, digits, '_' or '-'");
        }
        if self.description.chars().count() > 256 || self.description.chars().any(char::is_control)
        {
            return invalid(
                "description must be at most 256 characters, without control characters",
            );
        }
        if self.client_id.is_empty()
            || self.client_id.len() > LONGEST_SETTING
            || self.client_id.chars().any(char::is_control)
        {
            return invalid("clientId must be 1 to 2048 characters, without control characters");
        }
        let urls = [
            ("issuerId", &self.issuer_id),
            ("authorizationEndpoint", &self.authorization_endpoint),
            ("tokenEndpoint", &self.token_endpoint),
            ("userinfoEndpoint", &self.userinfo_endpoint),
            ("redirectUri", &self.redirect_uri),
        ];
        for (field, url) in urls {
            let scheme = url.starts_with("https://") || url.starts_with("http://");
            let spaced = url.chars().any(|c| c.is_whitespace() || c.is_control());
            if !scheme || url.len() > LONGEST_SETTING || spaced {
                return invalid(&format!(
                    "{field} must be an http(s) URL of at most 2048 characters"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ProviderToggled {}

events! {
    pub enum OidcProviderEvent {
        Created(ProviderSettings) = "oidc_provider.created",
        Updated(ProviderSettings) = "oidc_provider.updated",
        Enabled(ProviderToggled) = "oidc_provider.enabled",
        Disabled(ProviderToggled) = "oidc_provider.disabled",
        Deleted(ProviderToggled) = "oidc_provider.deleted",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OidcProviderCommand {
    Create(ProviderSettings),
    /// The settings after a partial update (merged, the new secret sealed, by the command layer).
    Update(ProviderSettings),
    Enable,
    Disable,
    /// Delete the provider; `linked_users` still log in through it.
    Delete {
        linked_users: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcProviderError {
    #[error("this provider already exists")]
    AlreadyExists,
    #[error("no OIDC provider with this id")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("{0}")]
    InvalidField(String),
    #[error("only a disabled provider without linked users can be deleted")]
    InUse,
    #[error("the provider is disabled")]
    Disabled,
}

impl DomainError for OidcProviderError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::InvalidField(_) => ExhCode::FieldFormat,
            Self::InUse | Self::Disabled => ExhCode::IllegalState,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcProvider {
    pub settings: Option<ProviderSettings>,
    pub enabled: bool,
    pub deleted: bool,
}

impl OidcProvider {
    /// The settings of an existing, enabled provider.
    pub fn usable(&self) -> Result<&ProviderSettings, OidcProviderError> {
        match &self.settings {
            Some(_) if self.deleted => Err(OidcProviderError::NotFound),
            Some(_) if !self.enabled => Err(OidcProviderError::Disabled),
            Some(settings) => Ok(settings),
            None => Err(OidcProviderError::NotFound),
        }
    }
}

impl Aggregate for OidcProvider {
    const KIND: &'static str = "oidcprovider";
    type Command = OidcProviderCommand;
    type Event = OidcProviderEvent;
    type Error = OidcProviderError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        let required = match command {
            OidcProviderCommand::Create(_) => "CREATE_OIDC_PROVIDER",
            OidcProviderCommand::Update(_)
            | OidcProviderCommand::Enable
            | OidcProviderCommand::Disable => "UPDATE_OIDC_PROVIDER",
            OidcProviderCommand::Delete { .. } => "DELETE_OIDC_PROVIDER",
        };
        ctx.actor.require(required, OidcProviderError::NoPermission)
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if let OidcProviderCommand::Create(settings) = command {
            if self.settings.is_some() {
                return Err(OidcProviderError::AlreadyExists);
            }
            settings.validate()?;
            return Ok(vec![OidcProviderEvent::Created(settings.clone())]);
        }
        let Some(current) = self.settings.as_ref().filter(|_| !self.deleted) else {
            return Err(OidcProviderError::NotFound);
        };
        let toggled = ProviderToggled {};
        match command {
            OidcProviderCommand::Create(_) => Err(OidcProviderError::AlreadyExists),
            OidcProviderCommand::Update(settings) if settings == current => Ok(vec![]),
            OidcProviderCommand::Update(settings) => {
                settings.validate()?;
                Ok(vec![OidcProviderEvent::Updated(settings.clone())])
            }
            OidcProviderCommand::Enable if self.enabled => Ok(vec![]),
            OidcProviderCommand::Enable => Ok(vec![OidcProviderEvent::Enabled(toggled)]),
            OidcProviderCommand::Disable if !self.enabled => Ok(vec![]),
            OidcProviderCommand::Disable => Ok(vec![OidcProviderEvent::Disabled(toggled)]),
            OidcProviderCommand::Delete { linked_users } => {
                if self.enabled || *linked_users > 0 {
                    return Err(OidcProviderError::InUse);
                }
                Ok(vec![OidcProviderEvent::Deleted(toggled)])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            OidcProviderEvent::Created(settings) | OidcProviderEvent::Updated(settings) => {
                self.settings = Some(settings.clone());
            }
            OidcProviderEvent::Enabled(_) => self.enabled = true,
            OidcProviderEvent::Disabled(_) => self.enabled = false,
            OidcProviderEvent::Deleted(_) => self.deleted = true,
        }
    }
}

/// Why a login through a provider failed, as answered to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct AttemptError {
    pub code: u32,
    pub name: String,
    pub message: String,
}

/// One login through a provider: `user_id` on success, `error` on failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct LoginAttempted {
    pub provider_id: Id,
    pub provider_name: String,
    pub subject_id: Option<String>,
    pub user_id: Option<Id>,
    pub error: Option<AttemptError>,
}

events! {
    pub enum OidcLoginEvent {
        Attempted(LoginAttempted) = "oidc_login.attempted",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this login attempt is already recorded")]
pub struct OidcLoginError;

impl DomainError for OidcLoginError {
    fn exh(&self) -> ExhCode {
        ExhCode::ResourceAlreadyExists
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OidcLogin {
    pub recorded: bool,
}

impl Aggregate for OidcLogin {
    const KIND: &'static str = "oidclogin";
    type Command = LoginAttempted;
    type Event = OidcLoginEvent;
    type Error = OidcLoginError;

    fn authorize(&self, _: &Self::Command, _: &Ctx<'_>) -> Result<(), Self::Error> {
        // Every login through a provider is recorded, whoever attempts it.
        Ok(())
    }

    fn handle(
        &self,
        command: &Self::Command,
        _: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        if self.recorded {
            return Err(OidcLoginError);
        }
        Ok(vec![OidcLoginEvent::Attempted(command.clone())])
    }

    fn apply(&mut self, _: &Self::Event) {
        self.recorded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{Actor, Via};
    use crate::aggregate::testing::{given, id};
    use crate::permission::Permissions;

    fn settings(name: &str) -> ProviderSettings {
        ProviderSettings {
            name: name.into(),
            description: "Our identity provider".into(),
            client_id: "vigil".into(),
            client_secret: Sealed(vec![1, 2, 3]),
            client_secret_hint: "cret".into(),
            issuer_id: "https://id.example.com".into(),
            authorization_endpoint: "https://id.example.com/authorize".into(),
            token_endpoint: "https://id.example.com/token".into(),
            userinfo_endpoint: "https://id.example.com/userinfo".into(),
            redirect_uri: "https://app.example.com/callback".into(),
        }
    }

    #[test]
    fn a_provider_is_created_with_valid_settings_by_its_permission() {
        given::<OidcProvider>(&[])
            .when(OidcProviderCommand::Create(settings("google")))
            .then(&[OidcProviderEvent::Created(settings("google"))]);
        for name in ["ab", "has space", &"x".repeat(41)] {
            given::<OidcProvider>(&[])
                .when(OidcProviderCommand::Create(settings(name)))
                .then_err(OidcProviderError::InvalidField(
                    "name must be 3 to 40 letters, digits, '_' or '-'".into(),
                ));
        }
        let mut insecure = settings("google");
        insecure.token_endpoint = "ftp://id.example.com/token".into();
        let mut controlled = settings("google");
        controlled.client_id = "vigil\u{0}".into();
        let mut described = settings("google");
        described.description = "bell\u{7}".into();
        let mut nul_url = settings("google");
        nul_url.redirect_uri = "https://app.example.com/\u{0}".into();
        for unfit in [insecure, controlled, described, nul_url] {
            assert!(matches!(
                unfit.validate(),
                Err(OidcProviderError::InvalidField(_))
            ));
        }
        let nobody = Actor::user(id(1), None, Permissions::default(), Via::Http, None);
        given::<OidcProvider>(&[])
            .by(nobody)
            .when(OidcProviderCommand::Create(settings("google")))
            .then_err(OidcProviderError::NoPermission("CREATE_OIDC_PROVIDER"));
    }

    #[test]
    fn only_a_disabled_provider_without_linked_users_is_deleted() {
        let created = OidcProviderEvent::Created(settings("google"));
        let enabled = OidcProviderEvent::Enabled(ProviderToggled {});
        let history = [created.clone(), enabled.clone()];
        given::<OidcProvider>(&history)
            .when(OidcProviderCommand::Delete { linked_users: 0 })
            .then_err(OidcProviderError::InUse);
        let disabled = [
            created.clone(),
            enabled,
            OidcProviderEvent::Disabled(ProviderToggled {}),
        ];
        given::<OidcProvider>(&disabled)
            .when(OidcProviderCommand::Delete { linked_users: 1 })
            .then_err(OidcProviderError::InUse);
        given::<OidcProvider>(&disabled)
            .when(OidcProviderCommand::Delete { linked_users: 0 })
            .then(&[OidcProviderEvent::Deleted(ProviderToggled {})]);
        let state = OidcProvider::fold(&[created]);
        assert_eq!(state.usable(), Err(OidcProviderError::Disabled));
    }

    #[test]
    fn a_login_attempt_is_recorded_once() {
        let attempt = LoginAttempted {
            provider_id: id(1),
            provider_name: "google".into(),
            subject_id: Some("sub".into()),
            user_id: Some(id(2)),
            error: None,
        };
        let recorded = OidcLoginEvent::Attempted(attempt.clone());
        given::<OidcLogin>(&[])
            .when(attempt.clone())
            .then(std::slice::from_ref(&recorded));
        given::<OidcLogin>(&[recorded])
            .when(attempt)
            .then_err(OidcLoginError);
    }
}
