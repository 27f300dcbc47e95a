//! The Extra Horizon error catalogue: one table from a Vigil error to the code, name and HTTP status
//! that Extra Horizon clients (and the SDK's error classes) expect.
//!
//! Domain errors say what happened (`EmailAlreadyUsed`); [`DomainError::exh`] says which catalogue
//! entry that becomes. The HTTP and gRPC edges render the entry; nothing else picks a status.

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident = ($code:expr, $name:expr, $status:expr) ),+ $(,)?) => {
        /// One Extra Horizon error: its numeric code, its wire name and its HTTP status.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ExhCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ExhCode {
            /// Every entry, for tests and documentation.
            pub const ALL: &'static [ExhCode] = &[$(ExhCode::$variant),+];

            pub const fn code(self) -> u32 {
                match self { $( ExhCode::$variant => $code, )+ }
            }

            pub const fn name(self) -> &'static str {
                match self { $( ExhCode::$variant => $name, )+ }
            }

            pub const fn status(self) -> u16 {
                match self { $( ExhCode::$variant => $status, )+ }
            }
        }
    };
}

catalogue! {
    /// Unexpected server error; the details go to the log, never to the client.
    Server = (1, "SERVER_EXCEPTION", 500),
    /// A dependency (log, read store) is unreachable.
    ServiceUnavailable = (4, "SERVICE_UNAVAILABLE_EXCEPTION", 503),
    /// The caller lacks a permission. Extra Horizon answers 401 here, not 403.
    NoPermission = (10, "NO_PERMISSION_EXCEPTION", 401),
    IdFormat = (12, "ID_FORMAT_EXCEPTION", 400),
    EmptyBody = (13, "EMPTY_BODY_EXCEPTION", 400),
    MissingRequiredFields = (14, "MISSING_REQUIRED_FIELDS_EXCEPTION", 400),
    FieldFormat = (15, "FIELD_FORMAT_EXCEPTION", 400),
    ResourceUnknown = (16, "RESOURCE_UNKNOWN_EXCEPTION", 404),
    ResourceAlreadyExists = (17, "RESOURCE_ALREADY_EXISTS_EXCEPTION", 400),
    InvalidRql = (19, "INVALID_RQL_EXCEPTION", 400),
    EmptyRql = (20, "EMPTY_RQL_EXCEPTION", 400),
    BodyFormat = (22, "BODY_FORMAT_EXCEPTION", 400),
    IllegalArgument = (26, "ILLEGAL_ARGUMENT_EXCEPTION", 400),
    IllegalState = (27, "ILLEGAL_STATE_EXCEPTION", 400),
    /// A concurrent change won; the client may retry (Vigil addition, HTTP 409).
    Conflict = (28, "CONFLICT_EXCEPTION", 409),
    ApplicationNotAuthenticated = (101, "APPLICATION_NOT_AUTHENTICATED_EXCEPTION", 401),
    ApplicationUnknown = (103, "APPLICATION_UNKNOWN_EXCEPTION", 400),
    UserNotAuthenticated = (104, "USER_NOT_AUTHENTICATED_EXCEPTION", 401),
    /// Wrong email or password.
    Authentication = (106, "AUTHENTICATION_EXCEPTION", 401),
    /// Unknown OAuth1 consumer key.
    OAuthKey = (107, "OAUTH_KEY_EXCEPTION", 401),
    /// Unknown OAuth1 token (for that consumer).
    OAuthToken = (108, "OAUTH_TOKEN_EXCEPTION", 401),
    /// A missing or wrong OAuth1 signature, or a timestamp outside the window.
    OAuthSignature = (109, "OAUTH_SIGNATURE_EXCEPTION", 401),
    /// An OAuth1 nonce used again.
    DuplicateRequest = (110, "DUPLICATE_REQUEST_EXCEPTION", 401),
    /// The redirect URI is not one the application registered.
    CallbackNotValid = (113, "CALLBACK_NOT_VALID_EXCEPTION", 400),
    UnsupportedResponseType = (114, "UNSUPPORTED_RESPONSE_TYPE_EXCEPTION", 400),
    /// The authorization code is unknown, spent or not the client's.
    AuthorizationUnknown = (115, "AUTHORIZATION_UNKNOWN_EXCEPTION", 400),
    AuthorizationCodeExpired = (116, "AUTHORIZATION_CODE_EXPIRED_EXCEPTION", 400),
    AccessTokenUnknown = (117, "ACCESS_TOKEN_UNKNOWN_EXCEPTION", 401),
    AccessTokenExpired = (118, "ACCESS_TOKEN_EXPIRED_EXCEPTION", 401),
    RefreshTokenUnknown = (119, "REFRESH_TOKEN_UNKNOWN_EXCEPTION", 400),
    RefreshTokenExpired = (120, "REFRESH_TOKEN_EXPIRED_EXCEPTION", 400),
    UnsupportedGrant = (121, "UNSUPPORTED_GRANT_EXCEPTION", 400),
    OAuth2ClientId = (123, "OAUTH2_CLIENT_ID_EXCEPTION", 401),
    OAuth2ClientSecret = (124, "OAUTH2_CLIENT_SECRET_EXCEPTION", 401),
    OAuth2MissingClientCredentials = (126, "OAUTH2_MISSING_CLIENT_CREDENTIALS_EXCEPTION", 400),
    /// The PKCE code verifier does not match the challenge.
    InvalidPkce = (122, "INVALID_PKCE_EXCEPTION", 400),
    MissingPkceVerifier = (128, "MISSING_PKCE_VERIFIER_EXCEPTION", 400),
    /// The password was right; a second factor must follow (OAuth2 answers 400 `mfa_required`).
    MfaRequired = (129, "MFA_REQUIRED_EXCEPTION", 403),
    InvalidMfaCode = (130, "INVALID_MFA_CODE_EXCEPTION", 400),
    /// The MFA challenge token is unknown, spent or expired.
    InvalidMfaToken = (131, "INVALID_MFA_TOKEN_EXCEPTION", 400),
    InvalidPresenceToken = (132, "INVALID_PRESENCE_TOKEN_EXCEPTION", 400),
    NotEnoughMfaMethods = (133, "NOT_ENOUGH_MFA_METHODS_EXCEPTION", 400),
    /// Too many wrong MFA codes; the body says how long to wait (`remainingDelay`, ms).
    MfaReattemptDelay = (134, "MFA_REATTEMPT_DELAY_EXCEPTION", 400),
    /// The provider's ID token could not be verified.
    OidcIdToken = (136, "OIDC_ID_TOKEN_EXCEPTION", 503),
    /// The ID token's nonce was not issued by this deployment, or has expired.
    InvalidNonce = (137, "INVALID_NONCE_EXCEPTION", 400),
    /// The provider answered unexpectedly (misconfigured, unreachable).
    OidcProviderResponse = (138, "OIDC_PROVIDER_RESPONSE_EXCEPTION", 400),
    /// The provider refused the authorization code.
    OidcInvalidAuthorizationCode = (139, "OIDC_INVALID_AUTHORIZATION_CODE_EXCEPTION", 400),
    EmailUnknown = (202, "EMAIL_UNKNOWN_EXCEPTION", 400),
    EmailUsed = (203, "EMAIL_USED_EXCEPTION", 400),
    NotActivated = (204, "NOT_ACTIVATED_EXCEPTION", 400),
    ActivationUnknown = (205, "ACTIVATION_UNKNOWN_EXCEPTION", 400),
    AlreadyActivated = (206, "ALREADY_ACTIVATED_EXCEPTION", 400),
    NewPasswordHashUnknown = (207, "NEW_PASSWORD_HASH_UNKNOWN_EXCEPTION", 400),
    Password = (208, "PASSWORD_EXCEPTION", 400),
    LoginTimeout = (211, "LOGIN_TIMEOUT_EXCEPTION", 401),
    LoginFreeze = (212, "LOGIN_FREEZE_EXCEPTION", 401),
    TooManyFailedAttempts = (213, "TOO_MANY_FAILED_ATTEMPTS_EXCEPTION", 401),
    /// The account logs in through an OIDC provider; password procedures do not apply.
    DisabledForOidcUsers = (215, "DISABLED_FOR_OIDC_USERS_EXCEPTION", 403),
    PinCodesNotEnabled = (218, "PIN_CODES_NOT_ENABLED_EXCEPTION", 403),
    /// No pin code was requested for the address, or it expired.
    PinCodeRequestUnknown = (219, "NEW_PASSWORD_PIN_CODE_UNKNOWN_EXCEPTION", 400),
    ForgotPasswordRequestLimit = (220, "FORGOT_PASSWORD_REQUEST_LIMIT_EXCEPTION", 403),
    ForgotPasswordRequestTimeout = (221, "FORGOT_PASSWORD_REQUEST_TIMEOUT_EXCEPTION", 403),
    ActivationRequestLimit = (222, "ACTIVATION_REQUEST_LIMIT_EXCEPTION", 403),
    ActivationRequestTimeout = (223, "ACTIVATION_REQUEST_TIMEOUT_EXCEPTION", 403),
    IncorrectPinCode = (224, "INCORRECT_PIN_CODE_EXCEPTION", 400),
    /// A status a transition still uses cannot be removed.
    StatusInUse = (414, "STATUS_IN_USE_EXCEPTION", 400),
    /// A workflow step paused by a `delay` holds the document; changes wait until it is done.
    LockedDocument = (415, "LOCKED_DOCUMENT_EXCEPTION", 400),
    /// The schema in a path is neither an id nor a schema name.
    InvalidSchemaPathParameter = (416, "INVALID_SCHEMA_PATH_PARAMETER", 400),
    /// A function's code is not a zip, or not what its runtime runs.
    FunctionCode = (1401, "INVALID_FUNCTION_CODE_EXCEPTION", 400),
    FunctionConfiguration = (1402, "INVALID_FUNCTION_CONFIGURATION_EXCEPTION", 400),
    /// As many tasks run as the deployment allows at once.
    ConcurrentExecutionLimit = (1403, "CONCURRENT_EXECUTION_LIMIT_EXCEPTION", 400),
    /// Direct execution is for functions whose time limit is at most 30 seconds.
    DirectExecutionTimeLimit = (1404, "TIME_LIMIT_EXCEEDS_DIRECT_EXECUTION_MAXIMUM_EXCEPTION", 400),
    /// The function could not be started (disabled, gone, its runtime missing).
    FunctionInvocation = (1405, "LAMBDA_INVOCATION_EXCEPTION", 400),
    /// The function failed; the body carries `runtimeError` and `taskId`.
    FunctionRuntime = (1406, "LAMBDA_RUNTIME_EXCEPTION", 400),
    InvalidFunctionName = (1407, "INVALID_FUNCTION_NAME_EXCEPTION", 400),
    NoTaskLogsFound = (1408, "NO_TASK_LOGS_FOUND_EXCEPTION", 400),
    /// An API function answered a status outside 200–499, or no answer.
    InvalidApiFunctionResult = (1409, "INVALID_API_FUNCTION_RESULT_EXCEPTION", 400),
    /// API functions are for functions whose time limit is at most 30 seconds.
    ApiFunctionTimeLimit = (1411, "TIME_LIMIT_EXCEEDS_API_FUNCTION_MAXIMUM_EXCEPTION", 400),
    ConcurrentApiFunctionLimit = (1412, "CONCURRENT_API_FUNCTION_LIMIT_EXCEPTION", 400),
    NoApiRequestLogsFound = (1413, "NO_API_REQUEST_LOGS_FOUND_EXCEPTION", 400),
    /// A localization without a text in the default language (`EN`).
    DefaultLocalizationMissing = (801, "DEFAULT_LOCALIZATION_MISSING", 400),
    /// One key twice in a bulk localization request. Extra Horizon publishes the name, not the
    /// number: Vigil's is 802.
    DuplicateLocalizationInputKeys = (802, "DUPLICATE_LOCALIZATION_INPUT_KEYS", 400),
    /// Inputs that do not match a template's declared input types.
    TemplateFilling = (1003, "TEMPLATE_FILLING_EXCEPTION", 400),
    /// A template output that does not compile (with `syntaxError: {output, message}`).
    TemplateSyntax = (1004, "TEMPLATE_SYNTAX_EXCEPTION", 400),
    /// A template output that fails to render (with `resolveError: {output, message}`).
    TemplateResolving = (1005, "TEMPLATE_RESOLVING_EXCEPTION", 400),
}

/// A business error that knows its catalogue entry.
pub trait DomainError: std::error::Error + Send + Sync + 'static {
    fn exh(&self) -> ExhCode;
}

/// The most characters of an error message a client is sent: a message that repeats its input
/// (an unknown value, a rejected string) is cut there, so an answer never grows with the request.
pub const MESSAGE_CHARS: usize = 1000;

/// `message`, cut to [`MESSAGE_CHARS`] characters with how many more there were.
pub fn bounded_message(message: String) -> String {
    let total = message.chars().count();
    if total <= MESSAGE_CHARS {
        return message;
    }
    let mut cut: String = message.chars().take(MESSAGE_CHARS).collect();
    cut.push_str(&format!("… ({} more characters)", total - MESSAGE_CHARS));
    cut
}

/// The most items of a list an error message names (violations, unknown fields).
pub const LISTED: usize = 20;

/// The first [`LISTED`] of `items` joined by `separator`, then how many more there were.
pub fn listed(items: impl IntoIterator<Item = String>, separator: &str) -> String {
    let mut items = items.into_iter();
    let shown: Vec<String> = items.by_ref().take(LISTED).collect();
    let more = items.count();
    let mut list = shown.join(separator);
    if more > 0 {
        list.push_str(&format!("{separator}and {more} more"));
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn a_bounded_message_is_short_and_starts_as_the_message(message in ".{0,3000}") {
            let bounded = bounded_message(message.clone());
            prop_assert!(bounded.chars().count() <= MESSAGE_CHARS + 40);
            let kept: String = message.chars().take(MESSAGE_CHARS).collect();
            prop_assert!(bounded.starts_with(&kept));
            prop_assert_eq!(bounded == message, message.chars().count() <= MESSAGE_CHARS);
        }

        #[test]
        fn a_list_names_at_most_its_first_items_and_counts_the_rest(count in 0usize..100) {
            let list = listed((0..count).map(|n| format!("item{n}")), "; ");
            let named = list.matches("item").count();
            prop_assert_eq!(named, count.min(LISTED));
            if count > LISTED {
                let more = format!("and {} more", count - LISTED);
                prop_assert!(list.ends_with(&more));
            }
        }
    }

    #[test]
    fn codes_and_names_are_unique() {
        let codes: HashSet<_> = ExhCode::ALL.iter().map(|c| c.code()).collect();
        let names: HashSet<_> = ExhCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(codes.len(), ExhCode::ALL.len());
        assert_eq!(names.len(), ExhCode::ALL.len());
    }

    #[test]
    fn a_missing_permission_is_a_401_as_in_extra_horizon() {
        assert_eq!(ExhCode::NoPermission.code(), 10);
        assert_eq!(ExhCode::NoPermission.status(), 401);
    }
}
