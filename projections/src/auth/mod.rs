//! The auth service's read models: OAuth applications, OIDC providers and their authorizations,
//! tokens, MFA settings and OAuth1 tokens.

pub mod application;
pub mod authorization;
pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod token;
