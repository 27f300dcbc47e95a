//! The auth service (`/auth/v2`): applications, sessions and their tokens, OAuth2 authorizations,
//! MFA, presence tokens, OAuth1 tokens, SSO tokens and OpenID Connect providers.

pub mod application;
pub mod authorization;
pub mod mfa;
pub mod oauth1;
pub mod oidc;
pub mod presence;
pub mod session;
pub mod sso;
