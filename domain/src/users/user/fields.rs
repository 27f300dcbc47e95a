//! The checks of a user's profile fields.

use super::*;

/// The longest name (first or last).
pub const LONGEST_NAME: usize = 100;
/// The longest phone number.
pub const LONGEST_PHONE_NUMBER: usize = 50;

/// A name: trimmed, 1 to [`LONGEST_NAME`] characters, none of them a control character.
pub fn name(field: &str, value: &str) -> Result<Personal<String>, UserError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > LONGEST_NAME {
        return Err(UserError::InvalidField(format!(
            "{field} must be 1 to {LONGEST_NAME} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(UserError::InvalidField(format!(
            "{field} must not hold control characters"
        )));
    }
    Ok(Personal(value.to_owned()))
}

/// A name from an identity provider, made to fit [`name`]: control characters dropped, cut to
/// [`LONGEST_NAME`] characters, `-` when nothing is left.
pub fn fitted_name(value: &str) -> String {
    let kept: String = value
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(LONGEST_NAME)
        .collect();
    match kept.trim() {
        "" => "-".to_owned(),
        fitted => fitted.to_owned(),
    }
}

/// A phone number: trimmed, none when blank, at most [`LONGEST_PHONE_NUMBER`] characters and no
/// control characters.
pub fn phone_number(value: &str) -> Result<Option<String>, UserError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > LONGEST_PHONE_NUMBER || value.chars().any(char::is_control) {
        return Err(UserError::InvalidField(format!(
            "phone_number must be at most {LONGEST_PHONE_NUMBER} characters, without control characters"
        )));
    }
    Ok(Some(value.to_owned()))
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
