//! Small value objects shared by every area: time, personal data, email addresses.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Server time in milliseconds since the Unix epoch (UTC). The domain never reads a clock: `now`
/// arrives in the command context.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The current wall-clock time. Aggregates never call this: they get `Ctx::now`.
    pub fn now() -> Self {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self(millis)
    }

    /// This instant plus `seconds`.
    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Self(self.0.saturating_add(seconds.saturating_mul(1000)))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Personal data about a person (names, email, phone, free text).
///
/// The marker changes nothing on the wire today; it names every field a later per-person
/// encryption key (crypto-shredding after an erasure request) must cover, so that can be added
/// without rewriting history.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
#[serde(transparent)]
pub struct Personal<T>(pub T);

impl<T> Personal<T> {
    pub fn get(&self) -> &T {
        &self.0
    }
}

// Personal data stays out of debug output and therefore out of logs.
impl<T> fmt::Debug for Personal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Personal(..)")
    }
}

/// A normalised email address: trimmed and lower-cased, so that uniqueness is case-insensitive.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

/// The text is not a plausible email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid email address")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(text: &str) -> Result<Self, InvalidEmail> {
        let email = text.trim().to_lowercase();
        let (local, domain) = email.split_once('@').ok_or(InvalidEmail)?;
        let plausible = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if plausible {
            Ok(Self(email))
        } else {
            Err(InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(..)")
    }
}

/// What renderings of the log (JSON: for auditors, over gRPC) show in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// Serializes a secret (a hash, a sealed value, keyed digests): itself in the log, which is
/// binary, and [`REDACTED`] in any human-readable rendering, so the type of a field decides that
/// its value never leaves the log, whatever the field is called.
pub(crate) fn serialize_secret<T: Serialize, S: Serializer>(
    secret: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(REDACTED)
    } else {
        secret.serialize(serializer)
    }
}

/// Reads a secret from the log; a rendering, which holds none, is refused.
pub(crate) fn deserialize_secret<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    if deserializer.is_human_readable() {
        Err(D::Error::custom("a rendering of the log holds no secrets"))
    } else {
        T::deserialize(deserializer)
    }
}

/// A secret sealed under the deployment key (nonce, ciphertext and tag): opaque to the domain,
/// and rendered as [`REDACTED`].
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Sealed(pub Vec<u8>);

impl Serialize for Sealed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize_secret(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for Sealed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_secret(deserializer).map(Self)
    }
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_for_comparison() {
        let email = Email::parse("  Jane.Doe@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "jane.doe@example.com");
    }

    #[test]
    fn implausible_emails_are_refused() {
        for text in [
            "",
            "jane",
            "@example.com",
            "jane@",
            "ja ne@example.com",
            "a@b@c",
        ] {
            assert_eq!(Email::parse(text), Err(InvalidEmail), "{text}");
        }
    }

    #[test]
    fn personal_data_is_not_printed() {
        assert_eq!(format!("{:?}", Personal("Jane")), "Personal(..)");
    }
}
