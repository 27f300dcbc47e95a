//! The auth service's procedures: logins and token refreshes, MFA, OAuth1, OpenID Connect.

pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod session;
