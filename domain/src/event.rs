//! The events of every area, and the commit-level [`Event`] that wraps them.
//!
//! Events are encoded with postcard, which identifies an enum variant by its position. So the rule
//! for every enum here is: **append new variants at the end; never reorder, rename or remove a
//! stored one, and never change a stored variant's fields.** A changed shape becomes a new variant
//! (`RegisteredV2`) that `apply` handles beside the old one. `tests::encodings_are_stable` pins the
//! bytes of every variant so a violation fails the build's tests.
//!
//! Each variant also has a stable wire name (`user.registered`) used in JSON renderings of the log;
//! a Rust rename never changes it.

use serde::{Deserialize, Serialize};

pub use crate::auth::application::ApplicationEvent;
pub use crate::auth::authorization::AuthorizationEvent;
pub use crate::auth::mfa::MfaEvent;
pub use crate::auth::oauth1::OAuth1TokenEvent;
pub use crate::auth::oidc::{OidcLoginEvent, OidcProviderEvent};
pub use crate::auth::presence::PresenceEvent;
pub use crate::auth::session::SessionEvent;
pub use crate::auth::sso::SsoTokenEvent;
pub use crate::data::document::DocumentEvent;
pub use crate::data::schema::SchemaEvent;
pub use crate::deployment::DeploymentEvent;
pub use crate::dispatchers::DispatcherEvent;
pub use crate::events::CustomEventEvent;
pub use crate::events::subscription::SubscriptionEvent;
pub use crate::localizations::LocalizationEvent;
pub use crate::reservation::ReservationEvent;
pub use crate::tasks::api_request::ApiRequestEvent;
pub use crate::tasks::function::FunctionEvent;
pub use crate::tasks::schedule::ScheduleEvent;
pub use crate::tasks::task::TaskEvent;
pub use crate::templates::TemplateEvent;
pub use crate::users::address::ResetRequestEvent;
pub use crate::users::bulk::BulkEvent;
pub use crate::users::group::GroupEvent;
pub use crate::users::login::LoginEvent;
pub use crate::users::role::RoleEvent;
pub use crate::users::settings::SettingsEvent;
pub use crate::users::user::UserEvent;

/// Declares an area's event enum with the stable wire name of each variant.
macro_rules! events {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($payload:ty) = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        pub enum $name {
            $( $(#[$vmeta])* $variant($payload), )+
        }

        impl $name {
            /// The stable name of this event in renderings of the log.
            pub fn wire_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $wire, )+ }
            }

            /// The event's fields as JSON (without the variant wrapper). Secrets render as
            /// `[redacted]`: their types say so (see `value::serialize_secret`).
            pub fn data_json(&self) -> serde_json::Value {
                match self {
                    $( Self::$variant(data) => serde_json::to_value(data).unwrap_or_default(), )+
                }
            }
        }
    };
}
pub(crate) use events;

/// The areas, in their stored order: the one list from which [`Event`], its renderings and the
/// conversions of each area's events are made. Append a new area at the end.
macro_rules! areas {
    ($($variant:ident($area:ty) in $aggregate:ty),+ $(,)?) => {
        /// Any event, as stored in a commit.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[cfg_attr(test, derive(proptest_derive::Arbitrary))]
        pub enum Event {
            $($variant($area),)+
        }

        impl Event {
            pub fn wire_name(&self) -> &'static str {
                match self {
                    $(Self::$variant(e) => e.wire_name(),)+
                }
            }

            /// The version of the event's shape; a new variant, not a new version, carries a
            /// changed shape, so every stored variant is version 1.
            pub fn schema_version(&self) -> u32 {
                1
            }

            /// The kind of the streams whose commits hold this event: its aggregate's `KIND`.
            pub fn stream_kind(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$aggregate as crate::aggregate::Aggregate>::KIND,)+
                }
            }

            pub fn data_json(&self) -> serde_json::Value {
                match self {
                    $(Self::$variant(e) => e.data_json(),)+
                }
            }
        }

        $(
            impl From<$area> for Event {
                fn from(event: $area) -> Self {
                    Self::$variant(event)
                }
            }

            impl AreaEvent for $area {
                fn within(event: &Event) -> Option<&Self> {
                    match event {
                        Event::$variant(inner) => Some(inner),
                        _ => None,
                    }
                }
            }
        )+
    };
}

areas!(
    Deployment(DeploymentEvent) in crate::deployment::Deployment,
    Reservation(ReservationEvent) in crate::reservation::Reservation,
    User(UserEvent) in crate::users::user::User,
    Role(RoleEvent) in crate::users::role::Role,
    Application(ApplicationEvent) in crate::auth::application::Application,
    Session(SessionEvent) in crate::auth::session::Session,
    Login(LoginEvent) in crate::users::login::Login,
    Settings(SettingsEvent) in crate::users::settings::Settings,
    Group(GroupEvent) in crate::users::group::Group,
    Authorization(AuthorizationEvent) in crate::auth::authorization::Authorization,
    Mfa(MfaEvent) in crate::auth::mfa::Mfa,
    Presence(PresenceEvent) in crate::auth::presence::Presence,
    OAuth1Token(OAuth1TokenEvent) in crate::auth::oauth1::OAuth1Token,
    SsoToken(SsoTokenEvent) in crate::auth::sso::SsoToken,
    ResetRequest(ResetRequestEvent) in crate::users::address::ResetRequests,
    OidcProvider(OidcProviderEvent) in crate::auth::oidc::OidcProvider,
    OidcLogin(OidcLoginEvent) in crate::auth::oidc::OidcLogin,
    Schema(SchemaEvent) in crate::data::schema::Schema,
    Document(DocumentEvent) in crate::data::document::Document,
    Bulk(BulkEvent) in crate::users::bulk::BulkJob,
    Function(FunctionEvent) in crate::tasks::function::Function,
    Task(TaskEvent) in crate::tasks::task::Task,
    Schedule(ScheduleEvent) in crate::tasks::schedule::Schedule,
    CustomEvent(CustomEventEvent) in crate::events::CustomEvent,
    Dispatcher(DispatcherEvent) in crate::dispatchers::Dispatcher,
    ApiRequest(ApiRequestEvent) in crate::tasks::api_request::ApiRequest,
    Subscription(SubscriptionEvent) in crate::events::subscription::Subscription,
    Localization(LocalizationEvent) in crate::localizations::Catalog,
    Template(TemplateEvent) in crate::templates::Template,
);

/// The events of one area, which a commit's [`Event`] wraps.
pub trait AreaEvent: Clone + Into<Event> + Send + Sync + 'static {
    /// This area's event inside `event`, if it is one.
    fn within(event: &Event) -> Option<&Self>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{Digest, StreamId};
    use crate::samples::{object, samples, status_changed};
    use crate::users::role::RoleCreated;
    use crate::users::user::{PasswordChanged, PasswordHash};
    use crate::value::Timestamp;
    use proptest::prelude::*;

    #[test]
    fn every_aggregate_kind_is_a_valid_stream_kind() {
        for (event, wire_name, _) in samples() {
            let kind = event.stream_kind();
            assert!(StreamId::new(kind, "key").is_ok(), "{wire_name}: {kind}");
        }
    }

    #[test]
    fn encodings_are_stable() {
        for (event, wire_name, expected) in samples() {
            assert_eq!(event.wire_name(), wire_name);
            let bytes = postcard::to_stdvec(&event).unwrap();
            assert_eq!(
                hex::encode(&bytes),
                expected,
                "stored encoding of {wire_name} changed"
            );
            assert_eq!(postcard::from_bytes::<Event>(&bytes).unwrap(), event);
        }
    }

    #[test]
    fn json_renderings_carry_the_fields_without_the_variant() {
        let event: Event = RoleEvent::Created(RoleCreated {
            name: "n".into(),
            description: "d".into(),
        })
        .into();
        assert_eq!(
            event.data_json(),
            serde_json::json!({"name": "n", "description": "d"})
        );
    }

    #[test]
    fn renderings_never_show_a_password_hash() {
        let event: Event = UserEvent::PasswordChanged(PasswordChanged {
            password_hash: PasswordHash("$argon2id$secret".into()),
        })
        .into();
        assert_eq!(
            event.data_json(),
            serde_json::json!({"password_hash": "[redacted]"})
        );
    }

    #[test]
    fn a_stored_payload_that_is_not_its_type_fails_decoding() {
        // Each would have folded into a default or been skipped before its payload was typed.
        let locked: Event = DocumentEvent::Locked(crate::data::document::DocumentLocked {
            since: Timestamp(1),
            resume_at: Timestamp(2),
            transition_id: None,
            next_action: 0,
            after_actions: crate::json::JsonOf(Vec::new()),
        })
        .into();
        let mut bytes = postcard::to_stdvec(&locked).unwrap();
        assert_eq!(bytes[bytes.len() - 2..], *b"[]");
        // Valid JSON, but not a list of task actions: a fold would have taken it for none.
        let end = bytes.len();
        bytes[end - 2..].copy_from_slice(b"{}");
        assert!(postcard::from_bytes::<Event>(&bytes).is_err());

        // A document's data that is not an object: the fold took it for an empty one.
        let updated: Event = DocumentEvent::Updated(crate::data::document::DocumentUpdated {
            data: object(serde_json::json!({})),
        })
        .into();
        let mut bytes = postcard::to_stdvec(&updated).unwrap();
        let end = bytes.len();
        assert_eq!(bytes[end - 2..], *b"{}");
        bytes[end - 2..].copy_from_slice(b"[]");
        assert!(postcard::from_bytes::<Event>(&bytes).is_err());

        // A schema's statuses that are not statuses: the fold kept the previous ones.
        let statuses: Event = SchemaEvent::StatusRemoved(status_changed()).into();
        let mut bytes = postcard::to_stdvec(&statuses).unwrap();
        let end = bytes.len();
        assert_eq!(bytes[end - 8..], *br#"{"s":{}}"#);
        bytes[end - 8..].copy_from_slice(br#"{"s":[]}"#);
        assert!(postcard::from_bytes::<Event>(&bytes).is_err());
    }

    #[test]
    fn renderings_never_show_a_sealed_secret_or_keyed_digests() {
        let settings = crate::auth::oidc::ProviderSettings {
            name: "idp".into(),
            description: String::new(),
            client_id: "client".into(),
            client_secret: crate::value::Sealed(vec![7; 40]),
            client_secret_hint: "cret".into(),
            issuer_id: "https://idp.example.com".into(),
            authorization_endpoint: "https://idp.example.com/authorize".into(),
            token_endpoint: "https://idp.example.com/token".into(),
            userinfo_endpoint: "https://idp.example.com/userinfo".into(),
            redirect_uri: "https://app.example.com/callback".into(),
        };
        let rendered =
            Event::from(crate::auth::oidc::OidcProviderEvent::Created(settings)).data_json();
        assert_eq!(rendered["client_secret"], "[redacted]", "{rendered}");
        assert_eq!(rendered["client_secret_hint"], "cret", "{rendered}");
        let codes = crate::auth::mfa::MethodSecret::RecoveryCodes(vec![Digest::of(b"code")]);
        assert_eq!(
            serde_json::to_value(codes).unwrap(),
            serde_json::json!({"RecoveryCodes": "[redacted]"})
        );
        let totp = crate::auth::mfa::MethodSecret::Totp(crate::value::Sealed(vec![1, 2]));
        assert_eq!(
            serde_json::to_value(totp).unwrap(),
            serde_json::json!({"Totp": "[redacted]"})
        );
    }

    proptest! {
        /// Every event survives the log's codec; its rendering reads back unless it holds a
        /// secret, which renders as `[redacted]` and so cannot be read back.
        #[test]
        fn every_event_round_trips(event: Event) {
            let bytes = postcard::to_stdvec(&event).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Event>(&bytes).unwrap(), event.clone());
            let json = serde_json::to_string(&event).unwrap();
            match serde_json::from_str::<Event>(&json) {
                Ok(read) => prop_assert_eq!(read, event),
                Err(error) => prop_assert!(json.contains("\"[redacted]\""), "{error}: {json}"),
            }
        }
    }
}
