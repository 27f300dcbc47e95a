//! Identifiers: ObjectId-shaped aggregate ids, stream names and digests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A 24-hex-digit identifier, the shape Extra Horizon clients expect (a MongoDB ObjectId).
///
/// Stored as its 12 bytes; new ids are generated in `commands` (the domain has no randomness).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Id([u8; 12]);

impl Id {
    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 12] {
        &self.0
    }

    /// The id of something made in reaction to a recorded change (a task a document's action
    /// asked for): the same `seed` always gives the same id, so a reaction repeated after a crash
    /// names the same aggregate. Like a new id, it starts with `at` in seconds.
    pub fn derived(at: crate::value::Timestamp, seed: &[u8]) -> Self {
        let seconds = u32::try_from(at.millis().div_euclid(1000)).unwrap_or(u32::MAX);
        let digest = Sha256::digest(seed);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..].copy_from_slice(&digest[..8]);
        Self(bytes)
    }

    /// When the id was made: its first four bytes are seconds since the Unix epoch.
    pub fn created_at(&self) -> crate::value::Timestamp {
        let [a, b, c, d, ..] = self.0;
        crate::value::Timestamp(i64::from(u32::from_be_bytes([a, b, c, d])) * 1000)
    }
}

/// The text was not 24 hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a 24-character hexadecimal id")]
pub struct InvalidId(pub String);

impl FromStr for Id {
    type Err = InvalidId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 12];
        if text.len() != 24 || hex::decode_to_slice(text, &mut bytes).is_err() {
            return Err(InvalidId(text.chars().take(64).collect()));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

// Ids travel as bytes in postcard and as hex text in JSON.
impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 12]>::deserialize(deserializer).map(Self)
        }
    }
}

/// A SHA-256 digest: commit hashes, and the only form in which tokens and client secrets are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Digest([u8; 32]);

impl Digest {
    /// The hash that precedes the first commit of every stream.
    pub const ZERO: Self = Self([0; 32]);

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Equality in time independent of where the digests differ (for digests of secrets).
    pub fn ct_eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }

    /// Parses 64 hexadecimal digits.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).ok()?;
        Some(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Self::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

/// The name of one aggregate instance's stream: `<kind>-<key>`, published on the subject
/// `<prefix>.ev.<kind>.<key>`.
///
/// `kind` is lower-case ASCII letters; `key` is ASCII letters, digits, `_` and `-`, so both are
/// valid NATS subject tokens and the first `-` always separates them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct StreamId {
    #[cfg_attr(test, proptest(regex = "[a-z]{1,12}"))]
    kind: String,
    #[cfg_attr(test, proptest(regex = "[A-Za-z0-9_-]{1,40}"))]
    key: String,
}

/// A stream name that would not be a valid subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid stream name")]
pub struct InvalidStreamId(pub String);

impl StreamId {
    pub fn new(kind: &str, key: &str) -> Result<Self, InvalidStreamId> {
        let kind_ok = !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase());
        let key_ok = !key.is_empty()
            && key.len() <= 200
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if kind_ok && key_ok {
            Ok(Self {
                kind: kind.to_owned(),
                key: key.to_owned(),
            })
        } else {
            Err(InvalidStreamId(format!("{kind}-{key}")))
        }
    }

    /// The stream of the aggregate of `kind` with this id: ids are always valid keys.
    pub fn of(kind: &'static str, id: Id) -> Self {
        Self {
            kind: kind.to_owned(),
            key: id.to_string(),
        }
    }

    pub fn kind(&self) -> &str {
        &self.kind
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// A stream whose parts the caller built from valid pieces (a lower-case kind, a key made of
    /// hex digits, lower-case letters and dashes).
    pub(crate) fn from_trusted_parts(kind: &'static str, key: String) -> Self {
        debug_assert!(
            Self::new(kind, &key).is_ok(),
            "invalid stream parts {kind} {key}"
        );
        Self {
            kind: kind.to_owned(),
            key,
        }
    }

    /// The aggregate id, when the key is one.
    pub fn id(&self) -> Option<Id> {
        self.key.parse().ok()
    }

    /// The subject suffix `<kind>.<key>`.
    pub fn subject_suffix(&self) -> String {
        format!("{}.{}", self.kind, self.key)
    }
}

impl FromStr for StreamId {
    type Err = InvalidStreamId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (kind, key) = text
            .split_once('-')
            .ok_or_else(|| InvalidStreamId(text.to_owned()))?;
        Self::new(kind, key)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind, self.key)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_id_round_trips_through_its_hex_form() {
        let id: Id = "5e9fff9d90135a2a9a718e2f".parse().unwrap();
        assert_eq!(id.to_string(), "5e9fff9d90135a2a9a718e2f");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"5e9fff9d90135a2a9a718e2f\""
        );
    }

    #[test]
    fn a_derived_id_depends_on_its_seed_and_starts_with_its_time() {
        let at = crate::value::Timestamp(1_700_000_000_123);
        assert_eq!(Id::derived(at, b"a"), Id::derived(at, b"a"));
        assert_ne!(Id::derived(at, b"a"), Id::derived(at, b"b"));
        assert_eq!(
            Id::derived(at, b"a").created_at().millis(),
            1_700_000_000_000
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "",
            "5e9f",
            "5e9fff9d90135a2a9a718e2g",
            "5e9fff9d90135a2a9a718e2f0",
        ] {
            assert!(text.parse::<Id>().is_err(), "{text}");
        }
    }

    #[test]
    fn a_stream_name_splits_at_its_first_dash() {
        let stream: StreamId = "unique-email-ab12".parse().unwrap();
        assert_eq!(stream.kind(), "unique");
        assert_eq!(stream.key(), "email-ab12");
        assert_eq!(stream.subject_suffix(), "unique.email-ab12");
        assert!("User-x".parse::<StreamId>().is_err());
        assert!("user-a.b".parse::<StreamId>().is_err());
        assert!("user-a b".parse::<StreamId>().is_err());
    }

    proptest! {
        #[test]
        fn ids_round_trip_in_both_encodings(id: Id) {
            prop_assert_eq!(id.to_string().parse::<Id>().unwrap(), id);
            let bytes = postcard::to_stdvec(&id).unwrap();
            prop_assert_eq!(postcard::from_bytes::<Id>(&bytes).unwrap(), id);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".*") {
            let _ = text.parse::<Id>();
            let _ = text.parse::<StreamId>();
        }
    }
}
