//! One sample of every stored event variant, with its wire name and the exact bytes it encodes
//! to. `event`'s tests pin the encodings with them; other crates (feature `samples`) check with
//! them that they handle every event they should.

use crate::auth::application::{ApplicationCreated, ApplicationKind, ApplicationVersionCreated};
use crate::auth::session::{IssuedToken, SessionRefreshed, SessionStarted};
use crate::deployment::Bootstrapped;
use crate::event::*;
use crate::id::{Digest, Id, StreamId};
use crate::reservation::{Claimed, Released};
use crate::users::role::{
    RoleCreated, RoleDeleted, RolePermissionsAdded, RolePermissionsRemoved, RoleUpdated,
};
use crate::users::user::{
    Optional, PasswordChanged, PasswordHash, UserDeleted, UserRegistered, UserRolesAdded,
    UserRolesRemoved, UserUpdated,
};
use crate::value::{Personal, Timestamp};

fn id(n: u8) -> Id {
    Id::from_bytes([n; 12])
}

fn token(n: u8) -> IssuedToken {
    IssuedToken {
        id: id(n),
        digest: Digest::from_bytes([n; 32]),
        expires_at: Timestamp(1_700_000_000_000),
    }
}

/// One sample of every stored variant, with the wire name and the exact bytes it encodes to.
pub fn samples() -> Vec<(Event, &'static str, &'static str)> {
    vec![
        (
            DeploymentEvent::Bootstrapped(Bootstrapped {
                admin_user_id: id(1),
                admin_role_id: id(2),
                application_id: id(3),
            })
            .into(),
            "deployment.bootstrapped",
            "0000010101010101010101010101020202020202020202020202030303030303030303030303",
        ),
        (
            DeploymentEvent::SecretsKeyRegistered(crate::deployment::SecretsKeyRegistered {
                fingerprint: Digest::from_bytes([6; 32]),
            })
            .into(),
            "deployment.secrets_key_registered",
            "00010606060606060606060606060606060606060606060606060606060606060606",
        ),
        (
            ReservationEvent::Claimed(Claimed {
                owner: StreamId::of("user", id(1)),
                command_id: "c".into(),
                claimed_at: Timestamp(5),
            })
            .into(),
            "reservation.claimed",
            "010004757365721830313031303130313031303130313031303130313031303101630a",
        ),
        (
            ReservationEvent::Released(Released {
                owner: StreamId::of("user", id(1)),
            })
            .into(),
            "reservation.released",
            "0101047573657218303130313031303130313031303130313031303130313031",
        ),
        (
            UserEvent::Registered(UserRegistered {
                email: Personal("a@b.c".into()),
                first_name: Personal("A".into()),
                last_name: Personal("B".into()),
                phone_number: None,
                language: "EN".into(),
                time_zone: "UTC".into(),
                password_hash: PasswordHash("h".into()),
                activated: true,
            })
            .into(),
            "user.registered",
            "0200056140622e63014101420002454e03555443016801",
        ),
        (
            UserEvent::RolesAdded(UserRolesAdded {
                role_ids: vec![id(2)],
            })
            .into(),
            "user.roles_added",
            "020101020202020202020202020202",
        ),
        (
            RoleEvent::Created(RoleCreated {
                name: "n".into(),
                description: "d".into(),
            })
            .into(),
            "role.created",
            "0300016e0164",
        ),
        (
            RoleEvent::PermissionsAdded(RolePermissionsAdded {
                permissions: vec!["VIEW_USER".into()],
            })
            .into(),
            "role.permissions_added",
            "03010109564945575f55534552",
        ),
        (
            UserEvent::RolesRemoved(UserRolesRemoved {
                role_ids: vec![id(2)],
            })
            .into(),
            "user.roles_removed",
            "020201020202020202020202020202",
        ),
        (
            UserEvent::Updated(UserUpdated {
                first_name: Some(Personal("A".into())),
                last_name: None,
                phone_number: Some(Optional::Cleared),
                language: Some("FR".into()),
                time_zone: None,
            })
            .into(),
            "user.updated",
            "02030101410001010102465200",
        ),
        (
            UserEvent::PasswordChanged(PasswordChanged {
                password_hash: PasswordHash("h".into()),
            })
            .into(),
            "user.password_changed",
            "02040168",
        ),
        (
            UserEvent::Deleted(UserDeleted {}).into(),
            "user.deleted",
            "0205",
        ),
        (
            RoleEvent::Updated(RoleUpdated {
                name: Some("n".into()),
                description: None,
            })
            .into(),
            "role.updated",
            "030201016e00",
        ),
        (
            RoleEvent::PermissionsRemoved(RolePermissionsRemoved {
                permissions: vec!["VIEW_USER".into()],
            })
            .into(),
            "role.permissions_removed",
            "03030109564945575f55534552",
        ),
        (
            RoleEvent::Deleted(RoleDeleted {}).into(),
            "role.deleted",
            "0304",
        ),
        (
            ApplicationEvent::Created(ApplicationCreated {
                name: "n".into(),
                description: "d".into(),
                kind: ApplicationKind::OAuth2 {
                    confidential: true,
                    redirect_uris: vec!["r".into()],
                },
            })
            .into(),
            "application.created",
            "0400016e01640101010172",
        ),
        (
            ApplicationEvent::VersionCreated(ApplicationVersionCreated {
                version_id: id(4),
                name: "v".into(),
                client_id: "c".into(),
                secret_digest: Digest::from_bytes([9; 32]),
            })
            .into(),
            "application.version_created",
            "0401040404040404040404040404017601630909090909090909090909090909090909090909090909090909090909090909",
        ),
        (
            ApplicationEvent::Updated(crate::auth::application::ApplicationUpdated {
                name: Some("n".into()),
                description: None,
                logo: None,
                redirect_uris: Some(vec!["r".into()]),
            })
            .into(),
            "application.updated",
            "040201016e000001010172",
        ),
        (
            ApplicationEvent::Deleted(crate::auth::application::ApplicationDeleted {}).into(),
            "application.deleted",
            "0403",
        ),
        (
            ApplicationEvent::VersionDeleted(crate::auth::application::ApplicationVersionDeleted {
                version_id: id(4),
            })
            .into(),
            "application.version_deleted",
            "0404040404040404040404040404",
        ),
        (
            SessionEvent::Started(SessionStarted {
                user_id: id(1),
                application_id: id(3),
                access: token(5),
                refresh: token(6),
            })
            .into(),
            "session.started",
            "0500010101010101010101010101030303030303030303030303050505050505050505050505050505050505050505050505050505050505050505050505050505050505050580a0abfef962060606060606060606060606060606060606060606060606060606060606060606060606060606060606060680a0abfef962",
        ),
        (
            SessionEvent::Refreshed(SessionRefreshed {
                access: token(7),
                refresh: token(8),
            })
            .into(),
            "session.refreshed",
            "0501070707070707070707070707070707070707070707070707070707070707070707070707070707070707070780a0abfef962080808080808080808080808080808080808080808080808080808080808080808080808080808080808080880a0abfef962",
        ),
        (
            LoginEvent::Failed(crate::users::login::LoginFailed {
                user_id: Some(id(1)),
                failed_count: 3,
                at: Timestamp(5),
            })
            .into(),
            "login.failed",
            "060001010101010101010101010101030a",
        ),
        (
            LoginEvent::Cleared(crate::users::login::FailuresCleared { user_id: None }).into(),
            "login.cleared",
            "060100",
        ),
        (
            LoginEvent::FailedFrom(crate::users::login::LoginFailedFrom {
                user_id: Some(id(1)),
                failed_count: 3,
                at: Timestamp(5),
                address: Some("10.0.0.1".into()),
            })
            .into(),
            "login.failed_from",
            "060201010101010101010101010101030a010831302e302e302e31",
        ),
        (
            LoginEvent::Locked(crate::users::login::LoginLocked {
                user_id: None,
                failed_count: 50,
                until: Some(Timestamp(7)),
                addresses: vec!["10.0.0.1".into()],
            })
            .into(),
            "login.locked",
            "06030032010e010831302e302e302e31",
        ),
        (
            SessionEvent::Ended(crate::auth::session::SessionEnded {}).into(),
            "session.ended",
            "0502",
        ),
        (
            SessionEvent::RefreshTokenReused(crate::auth::session::RefreshTokenReused {}).into(),
            "session.refresh_token_reused",
            "0503",
        ),
        (
            UserEvent::VerificationRequested(crate::users::verification::VerificationRequested {
                request_id: id(5),
                purpose: crate::users::verification::Purpose::PasswordReset,
                at: Timestamp(5),
            })
            .into(),
            "user.verification_requested",
            "0206050505050505050505050505010a",
        ),
        (
            UserEvent::VerificationCodeIssued(crate::users::verification::VerificationCodeIssued {
                request_id: id(5),
                digest: Digest::from_bytes([7; 32]),
                expires_at: Timestamp(9),
                at: Timestamp(5),
            })
            .into(),
            "user.verification_code_issued",
            "02070505050505050505050505050707070707070707070707070707070707070707070707070707070707070707120a",
        ),
        (
            UserEvent::VerificationMailSent(crate::users::verification::VerificationMailSent {
                request_id: id(5),
            })
            .into(),
            "user.verification_mail_sent",
            "0208050505050505050505050505",
        ),
        (
            UserEvent::Activated(crate::users::user::UserActivated {
                request_id: Some(id(5)),
            })
            .into(),
            "user.activated",
            "020901050505050505050505050505",
        ),
        (
            UserEvent::PasswordReset(crate::users::user::PasswordReset {
                request_id: id(5),
                password_hash: PasswordHash("h".into()),
            })
            .into(),
            "user.password_reset",
            "020a0505050505050505050505050168",
        ),
        (
            SettingsEvent::PasswordPolicySet(crate::users::settings::PasswordPolicySet {
                policy: crate::password::PasswordPolicy::default(),
            })
            .into(),
            "settings.password_policy_set",
            "070008800100000000",
        ),
        (
            SettingsEvent::VerificationSettingsSet(
                crate::users::settings::VerificationSettingsSet {
                    settings: crate::users::settings::VerificationSettings::default(),
                },
            )
            .into(),
            "settings.verification_set",
            "070100000101",
        ),
        (
            SettingsEvent::EmailTemplatesSet(crate::users::settings::EmailTemplatesSet {
                templates: vec![(
                    crate::users::settings::TemplateSlot::PasswordResetPin,
                    crate::users::settings::TemplateRef::Name("t".into()),
                )],
            })
            .into(),
            "settings.email_templates_set",
            "07020106010174",
        ),
        (
            SettingsEvent::LockoutPolicySet(crate::users::settings::LockoutPolicySet {
                policy: crate::users::login::LockoutPolicy {
                    after: 20,
                    lasts_millis: Some(1_800_000),
                },
            })
            .into(),
            "settings.lockout_policy_set",
            "0703140180dddb01",
        ),
        (
            UserEvent::EmailChanged(crate::users::user::EmailChanged {
                email: Personal("a@b.c".into()),
            })
            .into(),
            "user.email_changed",
            "020b056140622e63",
        ),
        (
            UserEvent::ProfileImageSet(crate::users::user::ProfileImageSet {
                hash: Some("h".into()),
            })
            .into(),
            "user.profile_image_set",
            "020c010168",
        ),
        (
            UserEvent::StaffEnlisted(crate::users::user::StaffEnlisted { group_id: id(6) }).into(),
            "user.staff_enlisted",
            "020d060606060606060606060606",
        ),
        (
            UserEvent::StaffRemoved(crate::users::user::StaffRemoved { group_id: id(6) }).into(),
            "user.staff_removed",
            "020e060606060606060606060606",
        ),
        (
            UserEvent::StaffRolesAdded(crate::users::user::StaffRolesAdded {
                group_id: id(6),
                role_ids: vec![id(7)],
            })
            .into(),
            "user.staff_roles_added",
            "020f06060606060606060606060601070707070707070707070707",
        ),
        (
            UserEvent::StaffRolesRemoved(crate::users::user::StaffRolesRemoved {
                group_id: id(6),
                role_ids: vec![id(7)],
            })
            .into(),
            "user.staff_roles_removed",
            "021006060606060606060606060601070707070707070707070707",
        ),
        (
            UserEvent::PatientEnlisted(crate::users::user::PatientEnlisted {
                group_id: id(6),
                expires_at: Some(Timestamp(9)),
            })
            .into(),
            "user.patient_enlistment_added",
            "02110606060606060606060606060112",
        ),
        (
            UserEvent::PatientRemoved(crate::users::user::PatientRemoved { group_id: id(6) })
                .into(),
            "user.patient_enlistment_removed",
            "0212060606060606060606060606",
        ),
        (
            UserEvent::CodeRequested(crate::users::verification::CodeRequested {
                request_id: id(4),
                purpose: crate::users::verification::Purpose::Activation,
                mode: crate::users::verification::Mode::PinCode,
                at: Timestamp(9),
                initiations: 2,
                first_request_id: id(3),
                first_requested_at: Timestamp(8),
            })
            .into(),
            "user.code_requested",
            "02130404040404040404040404040001120203030303030303030303030310",
        ),
        (
            UserEvent::PinFailed(crate::users::verification::VerificationPinFailed {
                request_id: id(4),
                purpose: crate::users::verification::Purpose::PasswordReset,
                at: Timestamp(9),
                failed_attempts: 2,
            })
            .into(),
            "user.verification_pin_failed",
            "0214040404040404040404040404011202",
        ),
        (
            UserEvent::VerificationCleared(crate::users::verification::VerificationCleared {
                request_id: id(4),
                purpose: crate::users::verification::Purpose::PasswordReset,
            })
            .into(),
            "user.verification_cleared",
            "021504040404040404040404040401",
        ),
        (
            UserEvent::OidcLinked(crate::users::user::OidcLinked {
                provider_id: id(4),
                subject_id: crate::value::Personal("s".into()),
            })
            .into(),
            "user.oidc_linked",
            "02160404040404040404040404040173",
        ),
        (
            UserEvent::OidcUnlinked(crate::users::user::OidcUnlinked {
                provider_id: id(4),
                reset_request: Some(id(5)),
            })
            .into(),
            "user.oidc_unlinked",
            "021704040404040404040404040401050505050505050505050505",
        ),
        (
            UserEvent::LoggedOutElsewhere(crate::users::user::LoggedOutElsewhere {
                kept: crate::users::user::KeptLogin::Session(id(6)),
            })
            .into(),
            "user.logged_out_elsewhere",
            "021800060606060606060606060606",
        ),
        (
            GroupEvent::RoleCreated(crate::users::group::GroupRoleCreated {
                role_id: id(7),
                name: "n".into(),
                description: "d".into(),
            })
            .into(),
            "group.role_created",
            "0800070707070707070707070707016e0164",
        ),
        (
            GroupEvent::RoleUpdated(crate::users::group::GroupRoleUpdated {
                role_id: id(7),
                name: None,
                description: Some("d".into()),
            })
            .into(),
            "group.role_updated",
            "080107070707070707070707070700010164",
        ),
        (
            GroupEvent::RolePermissionsAdded(crate::users::group::GroupRolePermissionsAdded {
                role_id: id(7),
                permissions: vec!["VIEW_PATIENTS".into()],
            })
            .into(),
            "group.role_permissions_added",
            "0802070707070707070707070707010d564945575f50415449454e5453",
        ),
        (
            GroupEvent::RolePermissionsRemoved(crate::users::group::GroupRolePermissionsRemoved {
                role_id: id(7),
                permissions: vec!["VIEW_PATIENTS".into()],
            })
            .into(),
            "group.role_permissions_removed",
            "0803070707070707070707070707010d564945575f50415449454e5453",
        ),
        (
            GroupEvent::RoleDeleted(crate::users::group::GroupRoleDeleted { role_id: id(7) })
                .into(),
            "group.role_deleted",
            "0804070707070707070707070707",
        ),
        (
            AuthorizationEvent::Created(crate::auth::authorization::AuthorizationCreated {
                user_id: id(1),
                application_id: id(3),
                client_id: "c".into(),
                redirect_uri: "r".into(),
                state: Some("s".into()),
                challenge: Some(crate::auth::authorization::CodeChallenge::S256("h".into())),
                code_digest: Digest::from_bytes([8; 32]),
                expires_at: Timestamp(9),
            })
            .into(),
            "authorization.created",
            "09000101010101010101010101010303030303030303030303030163017201017301010168080808080808080808080808080808080808080808080808080808080808080812",
        ),
        (
            AuthorizationEvent::Redeemed(crate::auth::authorization::AuthorizationRedeemed {
                session_id: id(4),
            })
            .into(),
            "authorization.redeemed",
            "0901040404040404040404040404",
        ),
        (
            AuthorizationEvent::Revoked(crate::auth::authorization::AuthorizationRevoked {}).into(),
            "authorization.revoked",
            "0902",
        ),
        (
            AuthorizationEvent::CodeReplayed(crate::auth::authorization::CodeReplayed {
                session_id: id(9),
            })
            .into(),
            "authorization.code_replayed",
            "0903090909090909090909090909",
        ),
        (
            ApplicationEvent::ConsumerSecretSealed(
                crate::auth::application::ConsumerSecretSealed {
                    version_id: id(5),
                    secret: crate::value::Sealed(vec![1, 2]),
                },
            )
            .into(),
            "application.consumer_secret_sealed",
            "0405050505050505050505050505020102",
        ),
        (
            MfaEvent::MethodAdded(crate::auth::mfa::MfaMethodAdded {
                method_id: id(2),
                name: "n".into(),
                tags: vec!["t".into()],
                secret: crate::auth::mfa::MethodSecret::Totp(crate::value::Sealed(vec![1, 2])),
                at: Timestamp(9),
            })
            .into(),
            "mfa.method_added",
            "0a00020202020202020202020202016e0101740002010212",
        ),
        (
            MfaEvent::MethodAdded(crate::auth::mfa::MfaMethodAdded {
                method_id: id(3),
                name: "r".into(),
                tags: vec![],
                secret: crate::auth::mfa::MethodSecret::RecoveryCodes(vec![Digest::from_bytes(
                    [4; 32],
                )]),
                at: Timestamp(9),
            })
            .into(),
            "mfa.method_added",
            "0a000303030303030303030303030172000101040404040404040404040404040404040404040404040404040404040404040412",
        ),
        (
            MfaEvent::MethodVerified(crate::auth::mfa::MfaMethodVerified {
                method_id: id(2),
                step: 5,
                at: Timestamp(9),
            })
            .into(),
            "mfa.method_verified",
            "0a010202020202020202020202020512",
        ),
        (
            MfaEvent::MethodRemoved(crate::auth::mfa::MfaMethodRemoved {
                method_id: id(2),
                at: Timestamp(9),
            })
            .into(),
            "mfa.method_removed",
            "0a0202020202020202020202020212",
        ),
        (
            MfaEvent::Enabled(crate::auth::mfa::MfaSwitched { at: Timestamp(9) }).into(),
            "mfa.enabled",
            "0a0312",
        ),
        (
            MfaEvent::Disabled(crate::auth::mfa::MfaSwitched { at: Timestamp(9) }).into(),
            "mfa.disabled",
            "0a0412",
        ),
        (
            MfaEvent::ChallengeIssued(crate::auth::mfa::MfaChallengeIssued {
                challenge_id: id(5),
                digest: Digest::from_bytes([6; 32]),
                application_id: id(3),
                expires_at: Timestamp(9),
            })
            .into(),
            "mfa.challenge_issued",
            "0a05050505050505050505050505060606060606060606060606060606060606060606060606060606060606060603030303030303030303030312",
        ),
        (
            MfaEvent::ChallengePassed(crate::auth::mfa::MfaChallengePassed {
                challenge_id: id(5),
                method_id: id(2),
                proof: crate::auth::mfa::Proof::Totp { step: 5 },
                session_id: id(4),
                at: Timestamp(9),
            })
            .into(),
            "mfa.challenge_passed",
            "0a06050505050505050505050505020202020202020202020202000504040404040404040404040412",
        ),
        (
            MfaEvent::ChallengePassed(crate::auth::mfa::MfaChallengePassed {
                challenge_id: id(5),
                method_id: id(3),
                proof: crate::auth::mfa::Proof::RecoveryCode { index: 1 },
                session_id: id(4),
                at: Timestamp(9),
            })
            .into(),
            "mfa.challenge_passed",
            "0a06050505050505050505050505030303030303030303030303010104040404040404040404040412",
        ),
        (
            MfaEvent::AttemptFailed(crate::auth::mfa::MfaAttemptFailed {
                method_id: Some(id(2)),
                failed_attempts: 3,
                at: Timestamp(9),
            })
            .into(),
            "mfa.attempt_failed",
            "0a07010202020202020202020202020312",
        ),
        (
            PresenceEvent::Confirmed(crate::auth::presence::PresenceConfirmed {
                token_id: id(5),
                digest: Digest::from_bytes([6; 32]),
                at: Timestamp(9),
                expires_at: Timestamp(10),
            })
            .into(),
            "presence.confirmed",
            "0b0005050505050505050505050506060606060606060606060606060606060606060606060606060606060606061214",
        ),
        (
            OAuth1TokenEvent::Created(crate::auth::oauth1::OAuth1TokenCreated {
                user_id: id(1),
                application_id: id(3),
                token_digest: Digest::from_bytes([6; 32]),
                secret: crate::value::Sealed(vec![1, 2]),
            })
            .into(),
            "oauth1_token.created",
            "0c000101010101010101010101010303030303030303030303030606060606060606060606060606060606060606060606060606060606060606020102",
        ),
        (
            OAuth1TokenEvent::Revoked(crate::auth::oauth1::OAuth1TokenRevoked {}).into(),
            "oauth1_token.revoked",
            "0c01",
        ),
        (
            SsoTokenEvent::Created(crate::auth::sso::SsoTokenCreated {
                user_id: id(1),
                application_id: id(3),
                digest: Digest::from_bytes([6; 32]),
                expires_at: Timestamp(9),
            })
            .into(),
            "sso_token.created",
            "0d00010101010101010101010101030303030303030303030303060606060606060606060606060606060606060606060606060606060606060612",
        ),
        (
            SsoTokenEvent::Consumed(crate::auth::sso::SsoTokenConsumed {
                application_id: id(3),
                oauth1_token_id: id(4),
            })
            .into(),
            "sso_token.consumed",
            "0d01030303030303030303030303040404040404040404040404",
        ),
        (
            ResetRequestEvent::Requested(crate::users::verification::VerificationRequested {
                request_id: id(4),
                purpose: crate::users::verification::Purpose::PasswordReset,
                at: Timestamp(9),
            })
            .into(),
            "reset_request.requested",
            "0e000404040404040404040404040112",
        ),
        (
            ResetRequestEvent::PinRequested(crate::users::verification::VerificationRequested {
                request_id: id(4),
                purpose: crate::users::verification::Purpose::PasswordReset,
                at: Timestamp(9),
            })
            .into(),
            "reset_request.pin_requested",
            "0e010404040404040404040404040112",
        ),
        (
            OidcProviderEvent::Disabled(crate::auth::oidc::ProviderToggled {}).into(),
            "oidc_provider.disabled",
            "0f03",
        ),
        (
            OidcLoginEvent::Attempted(crate::auth::oidc::LoginAttempted {
                provider_id: id(4),
                provider_name: "p".into(),
                subject_id: Some("s".into()),
                user_id: None,
                error: Some(crate::auth::oidc::AttemptError {
                    code: 203,
                    name: "E".into(),
                    message: "m".into(),
                }),
            })
            .into(),
            "oidc_login.attempted",
            "100004040404040404040404040401700101730001cb010145016d",
        ),
        (
            SchemaEvent::Created(crate::data::schema::SchemaCreated {
                name: "n".into(),
                description: "d".into(),
                definition: crate::json::JsonOf(Box::default()),
            })
            .into(),
            "schema.created",
            "1100016e0164d5027b2270726f70657274696573223a7b7d2c227374617475736573223a7b226e6577223a7b7d7d2c226372656174696f6e5472616e736974696f6e223a7b2274797065223a226d616e75616c222c22746f537461747573223a226e6577227d2c227472616e736974696f6e73223a5b5d2c22696e6465786573223a5b5d2c226372656174654d6f6465223a22616c6c5573657273222c22726561644d6f6465223a5b226c696e6b65645573657273222c226c696e6b656447726f75705374616666225d2c227570646174654d6f6465223a5b226c696e6b65645573657273222c226c696e6b656447726f75705374616666225d2c2264656c6574654d6f6465223a227065726d697373696f6e5265717569726564222c2267726f757053796e634d6f6465223a2264697361626c6564222c2264656661756c744c696d6974223a32302c226d6178696d756d4c696d6974223a3130307d",
        ),
        (
            SchemaEvent::Updated(crate::data::schema::SchemaUpdated {
                name: None,
                description: Some("d".into()),
                settings: crate::json::JsonOf(serde_json::Map::new()),
            })
            .into(),
            "schema.updated",
            "110100010164027b7d",
        ),
        (
            SchemaEvent::Disabled(crate::data::schema::SchemaToggled {}).into(),
            "schema.disabled",
            "1102",
        ),
        (
            SchemaEvent::Enabled(crate::data::schema::SchemaToggled {}).into(),
            "schema.enabled",
            "1103",
        ),
        (
            SchemaEvent::Deleted(crate::data::schema::SchemaDeleted {}).into(),
            "schema.deleted",
            "1104",
        ),
        (
            SchemaEvent::PropertyAdded(property_changed()).into(),
            "schema.property_added",
            "110503612e620a7b2262223a747275657d",
        ),
        (
            SchemaEvent::PropertyUpdated(property_changed()).into(),
            "schema.property_updated",
            "110603612e620a7b2262223a747275657d",
        ),
        (
            SchemaEvent::PropertyRemoved(property_changed()).into(),
            "schema.property_removed",
            "110703612e620a7b2262223a747275657d",
        ),
        (
            SchemaEvent::StatusAdded(status_changed()).into(),
            "schema.status_added",
            "11080173087b2273223a7b7d7d",
        ),
        (
            SchemaEvent::StatusUpdated(status_changed()).into(),
            "schema.status_updated",
            "11090173087b2273223a7b7d7d",
        ),
        (
            SchemaEvent::StatusRemoved(status_changed()).into(),
            "schema.status_removed",
            "110a0173087b2273223a7b7d7d",
        ),
        (
            SchemaEvent::CreationTransitionSet(crate::data::schema::CreationTransitionSet {
                creation_transition: crate::json::JsonOf(
                    vigil_schemas::workflow::CreationTransition::initial(),
                ),
            })
            .into(),
            "schema.creation_transition_set",
            "110b227b2274797065223a226d616e75616c222c22746f537461747573223a226e6577227d",
        ),
        (
            SchemaEvent::TransitionAdded(transition_changed()).into(),
            "schema.transition_added",
            "110c050505050505050505050505025b5d",
        ),
        (
            SchemaEvent::TransitionUpdated(transition_changed()).into(),
            "schema.transition_updated",
            "110d050505050505050505050505025b5d",
        ),
        (
            SchemaEvent::TransitionRemoved(transition_changed()).into(),
            "schema.transition_removed",
            "110e050505050505050505050505025b5d",
        ),
        (
            SchemaEvent::IndexAdded(index_changed()).into(),
            "schema.index_added",
            "110f060606060606060606060606025b5d",
        ),
        (
            SchemaEvent::IndexRemoved(index_changed()).into(),
            "schema.index_removed",
            "1110060606060606060606060606025b5d",
        ),
        (
            DocumentEvent::Created(crate::data::document::DocumentCreated {
                schema_id: id(1),
                creator_id: Some(id(2)),
                status: "new".into(),
                data: object(serde_json::json!({"v": 1.5})),
                user_ids: vec![id(2)],
                group_ids: vec![],
            })
            .into(),
            "document.created",
            "120001010101010101010101010101020202020202020202020202036e6577097b2276223a312e357d0102020202020202020202020200",
        ),
        (
            DocumentEvent::Updated(crate::data::document::DocumentUpdated {
                data: object(serde_json::json!({})),
            })
            .into(),
            "document.updated",
            "1201027b7d",
        ),
        (
            DocumentEvent::Transitioned(crate::data::document::DocumentTransitioned {
                transition_id: id(3),
                transition_name: Some("t".into()),
                from_status: "a".into(),
                to_status: "b".into(),
                data: object(serde_json::json!({})),
                user_ids: vec![],
                group_ids: vec![id(4)],
            })
            .into(),
            "document.transitioned",
            "120203030303030303030303030301017401610162027b7d0001040404040404040404040404",
        ),
        (
            DocumentEvent::Deleted(crate::data::document::DocumentDeleted {}).into(),
            "document.deleted",
            "1203",
        ),
        (
            DocumentEvent::TaskRequested(crate::data::document::TaskRequested {
                function_name: "f".into(),
                priority: Some(2),
                data: object(serde_json::json!({"documentId": "d"})),
            })
            .into(),
            "document.task_requested",
            "120401660104127b22646f63756d656e744964223a2264227d",
        ),
        (
            DocumentEvent::UsersChanged(crate::data::document::LinksChanged { ids: vec![id(5)] })
                .into(),
            "document.users_changed",
            "120501050505050505050505050505",
        ),
        (
            DocumentEvent::GroupsChanged(crate::data::document::LinksChanged { ids: vec![] })
                .into(),
            "document.groups_changed",
            "120600",
        ),
        (
            DocumentEvent::Locked(crate::data::document::DocumentLocked {
                since: Timestamp(1),
                resume_at: Timestamp(2),
                transition_id: Some(id(3)),
                next_action: 4,
                after_actions: crate::json::JsonOf(Vec::new()),
            })
            .into(),
            "document.locked",
            "120702040103030303030303030303030304025b5d",
        ),
        (
            DocumentEvent::Resumed(crate::data::document::DocumentResumed {
                data: object(serde_json::json!({})),
                user_ids: vec![id(5)],
                group_ids: vec![],
            })
            .into(),
            "document.resumed",
            "1208027b7d0105050505050505050505050500",
        ),
        (
            DocumentEvent::CommentAdded(crate::data::document::CommentAdded {
                comment_id: id(6),
                schema_id: id(7),
                creator_id: None,
                text: Personal("t".into()),
                comment_count: 1,
            })
            .into(),
            "document.comment_added",
            "120906060606060606060606060607070707070707070707070700017401",
        ),
        (
            DocumentEvent::CommentUpdated(crate::data::document::CommentUpdated {
                comment_id: id(6),
                text: Personal("u".into()),
            })
            .into(),
            "document.comment_updated",
            "120a0606060606060606060606060175",
        ),
        (
            DocumentEvent::CommentRemoved(crate::data::document::CommentRemoved {
                comment_id: id(6),
                comment_count: 0,
            })
            .into(),
            "document.comment_removed",
            "120b06060606060606060606060600",
        ),
        (
            BulkEvent::Started(crate::users::bulk::BulkStarted {
                change: crate::users::bulk::BulkChange::AddRoles {
                    role_ids: vec![id(2)],
                },
                user_ids: vec![id(1)],
                at: Timestamp(5),
            })
            .into(),
            "bulk.started",
            "13000101020202020202020202020202010101010101010101010101010a",
        ),
        (
            BulkEvent::Finished(crate::users::bulk::BulkFinished { affected: 1 }).into(),
            "bulk.finished",
            "130101",
        ),
        (
            FunctionEvent::Created(crate::tasks::function::FunctionCreated {
                name: "f".into(),
                settings: function_settings(),
                code: crate::tasks::function::FunctionCode {
                    digest: Digest::from_bytes([7; 32]),
                    size: 3,
                },
            })
            .into(),
            "function.created",
            "1400016601640d696e6465782e68616e646c657204726861691e800101014b010101010401010145070707070707070707070707070707070707070707070707070707070707070703",
        ),
        (
            FunctionEvent::Updated(crate::tasks::function::FunctionUpdated {
                settings: function_settings(),
                code: None,
            })
            .into(),
            "function.updated",
            "140101640d696e6465782e68616e646c657204726861691e800101014b01010101040101014500",
        ),
        (
            FunctionEvent::Enabled(crate::tasks::function::FunctionToggled {}).into(),
            "function.enabled",
            "1402",
        ),
        (
            FunctionEvent::Disabled(crate::tasks::function::FunctionToggled {}).into(),
            "function.disabled",
            "1403",
        ),
        (
            FunctionEvent::Deleted(crate::tasks::function::FunctionDeleted {}).into(),
            "function.deleted",
            "1404",
        ),
        (
            FunctionEvent::ExecutionSet(crate::tasks::function::FunctionExecutionSet {
                identity: crate::tasks::function::ExecutionIdentity {
                    user_id: id(1),
                    role_id: id(2),
                    application_id: id(3),
                    token_id: id(4),
                },
                variables: vec![crate::tasks::function::EnvironmentVariable {
                    name: "API_HOST".into(),
                    value: crate::value::Sealed(vec![7, 8]),
                }],
            })
            .into(),
            "function.execution_set",
            "140501010101010101010101010102020202020202020202020203030303030303030303030304040404040404040404040401084150495f484f5354020708",
        ),
        (
            TaskEvent::Created(crate::tasks::task::TaskCreated {
                function_name: "f".into(),
                data: object(serde_json::json!({"a": 1})),
                tags: vec!["t".into()],
                priority: -1,
                start_at: Timestamp(5),
                created_by_user: Some(id(1)),
                created_by_application: None,
                retry_for: vec![id(2)],
                direct: false,
            })
            .into(),
            "task.created",
            "15000166077b2261223a317d010174010a01010101010101010101010101000102020202020202020202020200",
        ),
        (
            TaskEvent::Started(crate::tasks::task::TaskStarted {
                node: "n".into(),
                lease_until: Timestamp(6),
                code: Digest::from_bytes([8; 32]),
            })
            .into(),
            "task.started",
            "1501016e0c0808080808080808080808080808080808080808080808080808080808080808",
        ),
        (
            TaskEvent::Completed(crate::tasks::task::TaskCompleted {
                result: "1".into(),
                run: run_record(),
            })
            .into(),
            "task.completed",
            "15020131010a016d01036e6f77025b5d0135",
        ),
        (
            TaskEvent::Failed(crate::tasks::task::TaskFailed {
                error: run_error(),
                run: run_record(),
            })
            .into(),
            "task.failed",
            "1503010145016d010a016d01036e6f77025b5d0135",
        ),
        (
            TaskEvent::Retried(crate::tasks::task::TaskRetried {
                error: run_error(),
                run: run_record(),
                retried_by: id(3),
                retry_at: Timestamp(7),
            })
            .into(),
            "task.retried",
            "1504010145016d010a016d01036e6f77025b5d01350303030303030303030303030e",
        ),
        (
            TaskEvent::Canceled(crate::tasks::task::TaskCanceled {}).into(),
            "task.canceled",
            "1505",
        ),
        (
            ScheduleEvent::Created(crate::tasks::schedule::ScheduleCreated {
                function_name: "f".into(),
                interval_seconds: 60,
                data: object(serde_json::json!({"a": 1})),
                priority: 1,
                start_at: Timestamp(5),
                created_by_user: Some(id(1)),
                created_by_application: None,
            })
            .into(),
            "schedule.created",
            "160001663c077b2261223a317d020a0101010101010101010101010100",
        ),
        (
            ScheduleEvent::Fired(crate::tasks::schedule::ScheduleFired {
                slot: Timestamp(5),
                next: Timestamp(6),
                task_id: id(2),
            })
            .into(),
            "schedule.fired",
            "16010a0c020202020202020202020202",
        ),
        (
            ScheduleEvent::Deleted(crate::tasks::schedule::ScheduleDeleted {}).into(),
            "schedule.deleted",
            "1602",
        ),
        (
            CustomEventEvent::Published(crate::events::EventPublished {
                event_type: "t".into(),
                content: object(serde_json::json!({"a": {}})),
            })
            .into(),
            "event.published",
            "17000174087b2261223a7b7d7d",
        ),
        (
            DispatcherEvent::Created(crate::dispatchers::DispatcherCreated {
                attributes: dispatcher_attributes(),
                actions: vec![task_action(), mail_action()],
            })
            .into(),
            "dispatcher.created",
            "1800016501016e0001017402040404040404040404040404010161010164000166097b226b223a2276227d00010a050505050505050505050505000001010d61406578616d706c652e636f6d0000010174",
        ),
        (
            DispatcherEvent::Updated(dispatcher_attributes()).into(),
            "dispatcher.updated",
            "1801016501016e00010174",
        ),
        (
            DispatcherEvent::ActionAdded(actions_changed()).into(),
            "dispatcher.action_added",
            "180205050505050505050505050502040404040404040404040404010161010164000166097b226b223a2276227d00010a050505050505050505050505000001010d61406578616d706c652e636f6d0000010174",
        ),
        (
            DispatcherEvent::ActionUpdated(actions_changed()).into(),
            "dispatcher.action_updated",
            "180305050505050505050505050502040404040404040404040404010161010164000166097b226b223a2276227d00010a050505050505050505050505000001010d61406578616d706c652e636f6d0000010174",
        ),
        (
            DispatcherEvent::ActionRemoved(crate::dispatchers::ActionsChanged {
                id: id(4),
                actions: vec![],
            })
            .into(),
            "dispatcher.action_removed",
            "180404040404040404040404040400",
        ),
        (
            DispatcherEvent::Deleted(crate::dispatchers::DispatcherDeleted {}).into(),
            "dispatcher.deleted",
            "1805",
        ),
        (
            ApiRequestEvent::Recorded(crate::tasks::api_request::ApiRequestRecorded {
                function_name: "f".into(),
                method: "GET".into(),
                path: "/p?q=1".into(),
                user_id: Some(id(1)),
                application_id: None,
                status_code: 201,
                duration_ms: 4,
                error: Some(run_error()),
                run: run_record(),
            })
            .into(),
            "api_request.recorded",
            "1900016603474554062f703f713d310101010101010101010101010100c9010401010145016d010a016d01036e6f77025b5d0135",
        ),
        (
            SubscriptionEvent::Created(crate::events::subscription::SubscriptionCreated {
                service_name: "https://hooks.example.com/events".into(),
                service_version: crate::events::subscription::ServiceVersion {
                    major: 1,
                    minor: 2,
                    patch: 3,
                },
                event_types: vec!["user_created".into()],
                retriable: true,
            })
            .into(),
            "subscription.created",
            "1a002068747470733a2f2f686f6f6b732e6578616d706c652e636f6d2f6576656e7473010203010c757365725f6372656174656401",
        ),
        (
            LocalizationEvent::Created(localizations_written()).into(),
            "localization.created",
            "1b0001016b0102454e026869",
        ),
        (
            LocalizationEvent::Updated(localizations_written()).into(),
            "localization.updated",
            "1b0101016b0102454e026869",
        ),
        (
            LocalizationEvent::Deleted(crate::localizations::LocalizationsDeleted {
                keys: vec!["k".into()],
            })
            .into(),
            "localization.deleted",
            "1b0201016b",
        ),
        (
            TemplateEvent::Created(template_attributes()).into(),
            "template.created",
            "1c00017401016401177b2278223a7b2274797065223a22737472696e67227d7d01016f0d7b7b40696e707574732e787d7d",
        ),
        (
            TemplateEvent::Updated(template_attributes()).into(),
            "template.updated",
            "1c01017401016401177b2278223a7b2274797065223a22737472696e67227d7d01016f0d7b7b40696e707574732e787d7d",
        ),
        (
            TemplateEvent::Deleted(crate::templates::TemplateDeleted {}).into(),
            "template.deleted",
            "1c02",
        ),
    ]
}

fn template_attributes() -> crate::templates::TemplateAttributes {
    crate::templates::TemplateAttributes {
        name: "t".into(),
        description: Some("d".into()),
        inputs: Some(object(serde_json::json!({"x": {"type": "string"}}))),
        outputs: [("o".to_owned(), "{{@inputs.x}}".to_owned())].into(),
    }
}

fn localizations_written() -> crate::localizations::LocalizationsWritten {
    crate::localizations::LocalizationsWritten {
        localizations: vec![crate::localizations::Localization {
            key: "k".into(),
            text: [("EN".to_owned(), "hi".to_owned())].into(),
        }],
    }
}

/// A document's data: `value`'s fields (none when it is not an object).
pub fn object(
    value: serde_json::Value,
) -> crate::json::JsonOf<serde_json::Map<String, serde_json::Value>> {
    crate::json::JsonOf(match value {
        serde_json::Value::Object(object) => object,
        _ => serde_json::Map::new(),
    })
}

pub fn property_changed() -> crate::data::schema::PropertyChanged {
    crate::data::schema::PropertyChanged {
        path: "a.b".into(),
        properties: crate::json::JsonOf(serde_json::Map::from_iter([(
            "b".to_owned(),
            serde_json::Value::Bool(true),
        )])),
    }
}

pub fn status_changed() -> crate::data::schema::StatusChanged {
    crate::data::schema::StatusChanged {
        name: "s".into(),
        statuses: crate::json::JsonOf([("s".to_owned(), Default::default())].into()),
    }
}

pub fn transition_changed() -> crate::data::schema::TransitionChanged {
    crate::data::schema::TransitionChanged {
        id: id(5),
        transitions: crate::json::JsonOf(Vec::new()),
    }
}

pub fn index_changed() -> crate::data::schema::IndexChanged {
    crate::data::schema::IndexChanged {
        id: id(6),
        indexes: crate::json::JsonOf(Vec::new()),
    }
}

fn function_settings() -> crate::tasks::function::FunctionSettings {
    crate::tasks::function::FunctionSettings {
        description: "d".into(),
        entry_point: "index.handler".into(),
        runtime: "rhai".into(),
        time_limit: 30,
        memory_limit: 128,
        environment: vec![crate::tasks::function::EnvironmentVariable {
            name: "K".into(),
            value: crate::value::Sealed(vec![1]),
        }],
        permission_mode: crate::tasks::function::PermissionMode::AllUsers,
        default_priority: Some(2),
        retry_policy: crate::tasks::function::RetryPolicy {
            enabled: true,
            errors_to_retry: vec!["E".into()],
        },
    }
}

fn run_record() -> crate::tasks::task::RunRecord {
    crate::tasks::task::RunRecord {
        logs: vec![crate::tasks::task::LogLine {
            at: Timestamp(5),
            message: "m".into(),
        }],
        host_calls: vec![crate::tasks::task::HostCall {
            name: "now".into(),
            input: "[]".into(),
            output: "5".into(),
        }],
    }
}

fn run_error() -> crate::tasks::task::RunError {
    crate::tasks::task::RunError {
        kind: crate::tasks::task::ErrorKind::Runtime,
        name: "E".into(),
        message: "m".into(),
    }
}

fn dispatcher_attributes() -> crate::dispatchers::DispatcherAttributes {
    crate::dispatchers::DispatcherAttributes {
        event_type: "e".into(),
        name: Some("n".into()),
        description: None,
        tags: vec!["t".into()],
    }
}

fn task_action() -> crate::dispatchers::Action {
    crate::dispatchers::Action {
        id: id(4),
        name: Some("a".into()),
        description: Some("d".into()),
        kind: crate::dispatchers::ActionKind::Task(crate::dispatchers::TaskAction {
            function_name: "f".into(),
            data: object(serde_json::json!({"k": "v"})),
            tags: vec![],
            start_at: Some(Timestamp(5)),
        }),
    }
}

fn mail_action() -> crate::dispatchers::Action {
    crate::dispatchers::Action {
        id: id(5),
        name: None,
        description: None,
        kind: crate::dispatchers::ActionKind::Mail(crate::dispatchers::MailAction {
            to: vec!["a@example.com".into()],
            cc: vec![],
            bcc: vec![],
            template_id: Some("t".into()),
        }),
    }
}

fn actions_changed() -> crate::dispatchers::ActionsChanged {
    crate::dispatchers::ActionsChanged {
        id: id(5),
        actions: vec![task_action(), mail_action()],
    }
}
