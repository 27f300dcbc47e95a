//! Why a user command is refused.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("this user already exists")]
    AlreadyRegistered,
    #[error("user not found")]
    NotFound,
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("{0}")]
    InvalidField(String),
    #[error("the password is incorrect")]
    WrongPassword,
    #[error("{0}")]
    WeakPassword(String),
    #[error(transparent)]
    Verification(#[from] VerificationError),
    #[error("the account is already activated")]
    AlreadyActivated,
    #[error("the account's email address is not verified yet")]
    NotActivated,
    #[error("the user is already a patient of this group")]
    AlreadyPatient,
    #[error("the user is not a patient of this group")]
    NotPatient,
    #[error("pin codes are not enabled in the verification settings")]
    PinCodesNotEnabled,
    #[error("this account logs in through an OIDC provider and has no password")]
    DisabledForOidcUsers,
    #[error("the presence token is unknown or has expired")]
    InvalidPresence,
    #[error("this account is linked to no OIDC provider")]
    NotLinked,
    #[error("{0}")]
    TemplateUnavailable(String),
}

impl DomainError for UserError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::AlreadyRegistered => ExhCode::ResourceAlreadyExists,
            Self::NotFound => ExhCode::ResourceUnknown,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::InvalidField(_) => ExhCode::FieldFormat,
            Self::WrongPassword | Self::WeakPassword(_) => ExhCode::Password,
            Self::AlreadyActivated => ExhCode::AlreadyActivated,
            Self::NotActivated => ExhCode::NotActivated,
            Self::AlreadyPatient => ExhCode::ResourceAlreadyExists,
            Self::NotPatient => ExhCode::ResourceUnknown,
            Self::PinCodesNotEnabled => ExhCode::PinCodesNotEnabled,
            Self::DisabledForOidcUsers => ExhCode::DisabledForOidcUsers,
            Self::InvalidPresence => ExhCode::InvalidPresenceToken,
            Self::NotLinked | Self::TemplateUnavailable(_) => ExhCode::IllegalState,
            Self::Verification(error) => match error {
                VerificationError::TooSoon(Purpose::Activation) => {
                    ExhCode::ActivationRequestTimeout
                }
                VerificationError::TooMany(Purpose::Activation) => ExhCode::ActivationRequestLimit,
                VerificationError::TooSoon(Purpose::PasswordReset) => {
                    ExhCode::ForgotPasswordRequestTimeout
                }
                VerificationError::TooMany(Purpose::PasswordReset) => {
                    ExhCode::ForgotPasswordRequestLimit
                }
                VerificationError::UnknownCode(Purpose::Activation) => ExhCode::ActivationUnknown,
                VerificationError::UnknownCode(Purpose::PasswordReset) => {
                    ExhCode::NewPasswordHashUnknown
                }
                VerificationError::UnknownPinRequest(Purpose::Activation) => {
                    ExhCode::ActivationUnknown
                }
                VerificationError::UnknownPinRequest(Purpose::PasswordReset) => {
                    ExhCode::PinCodeRequestUnknown
                }
                VerificationError::WrongPin => ExhCode::IncorrectPinCode,
                VerificationError::PinAttemptsExhausted => ExhCode::TooManyFailedAttempts,
                VerificationError::Claimed | VerificationError::NotPending => ExhCode::IllegalState,
            },
        }
    }
}
