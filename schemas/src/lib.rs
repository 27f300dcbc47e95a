//! The data service's schema model, without I/O.
//!
//! Extra Horizon schemas describe document properties with a subset of JSON Schema (a
//! "type configuration"), the statuses of a workflow and the transitions between them, the
//! indexes of the documents and who may do what with them. This crate checks such configurations
//! and compiles property configurations into validators with the `jsonschema` crate — with remote
//! `$ref` resolution compiled out, so a user-defined schema can never make Vigil fetch a URL.
//!
//! Layout:
//! - [`property`]: type configurations, their checks, and compiled validators whose errors name the
//!   failing paths.
//! - [`workflow`]: statuses, transitions, conditions, actions.
//! - [`access`]: the create/read/update/delete modes and the group sync mode.
//! - [`index`]: document indexes.
//! - [`definition`]: a whole schema configuration and the changes made to it.
//! - [`compiled`]: a schema with its validators compiled, to check documents against.

pub mod access;
pub mod compiled;
pub mod definition;
pub mod index;
pub mod property;
pub mod workflow;

/// A configuration (or a change to one) that Vigil does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigurationError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{0} does not exist")]
    Unknown(String),
    #[error("{0} already exists")]
    Exists(String),
    #[error("status `{0}` is still used by a transition")]
    StatusInUse(String),
}

impl ConfigurationError {
    pub fn invalid(path: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            message: message.into(),
        }
    }
}

/// Whether `text` has the shape of an id (24 hexadecimal digits), which a name may not have: a
/// schema is addressed by id or by name in the same path segment.
fn looks_like_id(text: &str) -> bool {
    text.len() == 24 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A schema name as Extra Horizon allows it: 3 to 50 letters, digits, `_` or `-`.
pub fn is_schema_name(name: &str) -> bool {
    (3..=50).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Checks a new name for a schema.
pub fn check_name(name: &str) -> Result<(), ConfigurationError> {
    if !is_schema_name(name) || looks_like_id(name) {
        return Err(ConfigurationError::invalid(
            "name",
            "3 to 50 letters, digits, `_` or `-`, and not an id",
        ));
    }
    Ok(())
}

/// Checks a schema description (at most 100 characters).
pub fn check_description(description: &str) -> Result<(), ConfigurationError> {
    if description.chars().count() > 100 {
        return Err(ConfigurationError::invalid(
            "description",
            "at most 100 characters",
        ));
    }
    Ok(())
}
