//! The checks of a user's profile fields.

use super::*;

/// A name: trimmed, 1 to 100 characters.
pub(super) fn name(field: &str, value: &str) -> Result<Personal<String>, UserError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > 100 {
        return Err(UserError::InvalidField(format!(
            "{field} must be 1 to 100 characters"
        )));
    }
    Ok(Personal(value.to_owned()))
}

/// An ISO 639-1 language code, upper-cased (`en` → `EN`).
pub fn language(value: &str) -> Result<String, UserError> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(value)
    } else {
        Err(UserError::InvalidField(
            "language must be a two-letter ISO 639-1 code".into(),
        ))
    }
}

/// A time zone name (`Europe/Brussels`, `UTC`): letters, digits and `/_+-`, at most 64 characters.
pub fn time_zone(value: &str) -> Result<String, UserError> {
    let value = value.trim();
    let plausible = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c));
    if plausible {
        Ok(value.to_owned())
    } else {
        Err(UserError::InvalidField(
            "time_zone must be a time zone name such as Europe/Brussels".into(),
        ))
    }
}
