//! The commit: the unit the log stores. One command's events, with the audit envelope of
//! DESIGN.md §4 and a link in its stream's hash chain.
//!
//! Stored bytes: `FORMAT (1 byte) || postcard(Commit) || hash (32 bytes)`, where
//! `hash = SHA-256(prev_hash || FORMAT || postcard(Commit))` and `prev_hash` is the hash of the
//! stream's previous commit (zero for the first). Postcard is deterministic, so these bytes are the
//! canonical form. The global position is assigned by the log and is not part of them.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::actor::{Actor, ActorRecord};
use crate::event::Event;
use crate::id::{Digest, StreamId};
use crate::log::LogError;
use crate::value::Timestamp;

/// The commit format written today. A future format gets a new number, and decoding upcasts older
/// formats into the current types.
pub const FORMAT_V1: u8 = 1;

/// The largest encoded commit accepted, NATS's default `max_payload`; both logs enforce it so the
/// deployments behave alike.
pub const MAX_COMMIT_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct Commit {
    pub stream: StreamId,
    /// 1 for a stream's first commit, then +1 per commit.
    pub version: u64,
    /// The command that produced it; a retried command carries the same id.
    pub command_id: String,
    /// Server time of the decision.
    pub recorded_at: Timestamp,
    pub actor: ActorRecord,
    pub correlation_id: String,
    /// What caused the command (a task, an event), when not a direct request.
    pub causation_id: Option<String>,
    /// Why, when the user gave a reason (Part 11).
    pub reason: Option<String>,
    pub prev_hash: Digest,
    pub events: Vec<Event>,
}

/// The last commit of a stream, which the next commit must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub version: u64,
    pub position: u64,
    pub hash: Digest,
}

/// A commit as read back from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Global position: the JetStream stream sequence, or the SQLite row id.
    pub position: u64,
    pub commit: Commit,
    pub hash: Digest,
}

impl Recorded {
    /// Decodes the stored bytes of the commit at `position`; bytes that do not decode or do not
    /// match their hash are a corrupt log.
    pub fn decode(position: u64, bytes: &[u8]) -> Result<Self, LogError> {
        let (commit, hash) =
            Commit::decode(bytes).map_err(|source| LogError::Corrupt { position, source })?;
        Ok(Self {
            position,
            commit,
            hash,
        })
    }

    pub fn head(&self) -> Head {
        Head {
            version: self.commit.version,
            position: self.position,
            hash: self.hash,
        }
    }
}

/// The audit metadata of one command, from the edge that received it.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub command_id: String,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub reason: Option<String>,
    pub actor: Actor,
}

impl CommandMeta {
    /// The metadata of a further command this one makes (releasing a reservation, recording a
    /// refusal): the same edge and actor, under its own command id `<command id>/<step>`, so a
    /// retry of the whole command repeats it idempotently.
    pub fn step(&self, step: &str) -> Self {
        Self {
            command_id: format!("{}/{step}", self.command_id),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("commit format {0} is unknown to this version of Vigil")]
    UnknownFormat(u8),
    #[error("commit bytes are truncated")]
    Truncated,
    #[error("commit bytes do not decode: {0}")]
    Malformed(String),
    #[error("the stored hash does not match the commit's contents")]
    HashMismatch,
    #[error("commit could not be encoded: {0}")]
    Encode(String),
    #[error("stream {stream} breaks its hash chain at version {version}")]
    BrokenChain { stream: String, version: u64 },
}

impl Commit {
    /// The next commit of `stream` after `head` (`None`: the stream's first commit).
    pub fn next(
        stream: StreamId,
        head: Option<&Head>,
        meta: &CommandMeta,
        now: Timestamp,
        events: Vec<Event>,
    ) -> Self {
        Self {
            stream,
            version: head.map_or(1, |h| h.version + 1),
            command_id: meta.command_id.clone(),
            recorded_at: now,
            actor: meta.actor.record().clone(),
            correlation_id: meta.correlation_id.clone(),
            causation_id: meta.causation_id.clone(),
            reason: meta.reason.clone(),
            prev_hash: head.map_or(Digest::ZERO, |h| h.hash),
            events,
        }
    }

    /// The commit's idempotency key (JetStream `Nats-Msg-Id`): the same command appending to the
    /// same stream always has the same commit id, so a retry is recognised as a duplicate.
    pub fn commit_id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.command_id.as_bytes());
        hasher.update([0]);
        hasher.update(self.stream.to_string().as_bytes());
        hex::encode(&hasher.finalize()[..16])
    }

    /// The stored bytes and the commit's hash.
    pub fn encode(&self) -> Result<(Vec<u8>, Digest), CodecError> {
        let mut bytes = vec![FORMAT_V1];
        let body = postcard::to_stdvec(self).map_err(|e| CodecError::Encode(e.to_string()))?;
        bytes.extend_from_slice(&body);
        let hash = chain_hash(&self.prev_hash, &bytes);
        bytes.extend_from_slice(hash.as_bytes());
        Ok((bytes, hash))
    }

    /// The bytes a log stores, refused when they exceed [`MAX_COMMIT_BYTES`].
    pub fn encode_for_log(&self) -> Result<(Vec<u8>, Digest), LogError> {
        let (bytes, hash) = self.encode().map_err(LogError::Encode)?;
        if bytes.len() > MAX_COMMIT_BYTES {
            return Err(LogError::TooLarge {
                size: bytes.len(),
                max: MAX_COMMIT_BYTES,
            });
        }
        Ok((bytes, hash))
    }

    /// Decodes stored bytes, checking that the stored hash matches the contents.
    pub fn decode(bytes: &[u8]) -> Result<(Self, Digest), CodecError> {
        let (&format, _) = bytes.split_first().ok_or(CodecError::Truncated)?;
        if format != FORMAT_V1 {
            return Err(CodecError::UnknownFormat(format));
        }
        if bytes.len() < 1 + 32 {
            return Err(CodecError::Truncated);
        }
        let (content, stored) = bytes.split_at(bytes.len() - 32);
        let commit: Commit = postcard::from_bytes(&content[1..])
            .map_err(|e| CodecError::Malformed(e.to_string()))?;
        let hash = chain_hash(&commit.prev_hash, content);
        if hash.as_bytes().as_slice() != stored {
            return Err(CodecError::HashMismatch);
        }
        Ok((commit, hash))
    }
}

/// `SHA-256(prev_hash || content)`.
fn chain_hash(prev_hash: &Digest, content: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(content);
    Digest::from_bytes(hasher.finalize().into())
}

/// Checks that `commits` (one stream, in order) form an unbroken chain from the stream's start;
/// returns the version of the first commit that does not.
pub fn verify_chain(commits: &[Recorded]) -> Result<(), u64> {
    let mut expected = (1, Digest::ZERO);
    for recorded in commits {
        let commit = &recorded.commit;
        if commit.version != expected.0 || commit.prev_hash != expected.1 {
            return Err(commit.version);
        }
        expected = (commit.version + 1, recorded.hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::Via;
    use crate::id::Id;
    use proptest::prelude::*;

    fn meta() -> CommandMeta {
        CommandMeta {
            command_id: "cmd-1".into(),
            correlation_id: "corr-1".into(),
            causation_id: None,
            reason: Some("bootstrap".into()),
            actor: Actor::system(Via::Cli),
        }
    }

    fn stream() -> StreamId {
        StreamId::of("deployment", Id::from_bytes([1; 12]))
    }

    #[test]
    fn a_stream_chains_its_commits() {
        let first = Commit::next(stream(), None, &meta(), Timestamp(1), vec![]);
        let (_, hash) = first.encode().unwrap();
        let head = Head {
            version: 1,
            position: 7,
            hash,
        };
        let second = Commit::next(stream(), Some(&head), &meta(), Timestamp(2), vec![]);
        assert_eq!(second.version, 2);
        assert_eq!(second.prev_hash, hash);
        let (_, second_hash) = second.encode().unwrap();
        let recorded = [
            Recorded {
                position: 7,
                commit: first,
                hash,
            },
            Recorded {
                position: 9,
                commit: second.clone(),
                hash: second_hash,
            },
        ];
        assert_eq!(verify_chain(&recorded), Ok(()));
        let broken = [recorded[1].clone()];
        assert_eq!(verify_chain(&broken), Err(2));
    }

    #[test]
    fn tampering_with_stored_bytes_is_detected() {
        let commit = Commit::next(stream(), None, &meta(), Timestamp(1), vec![]);
        let (mut bytes, _) = commit.encode().unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        assert!(Commit::decode(&bytes).is_err());
    }

    #[test]
    fn unknown_formats_are_refused() {
        assert_eq!(
            Commit::decode(&[9, 0, 0]),
            Err(CodecError::UnknownFormat(9))
        );
        assert_eq!(Commit::decode(&[]), Err(CodecError::Truncated));
    }

    #[test]
    fn the_commit_id_depends_on_command_and_stream_only() {
        let a = Commit::next(stream(), None, &meta(), Timestamp(1), vec![]);
        let b = Commit::next(stream(), None, &meta(), Timestamp(99), vec![]);
        assert_eq!(a.commit_id(), b.commit_id());
        let other = Commit::next(
            StreamId::of("deployment", Id::from_bytes([2; 12])),
            None,
            &meta(),
            Timestamp(1),
            vec![],
        );
        assert_ne!(a.commit_id(), other.commit_id());
    }

    proptest! {
        #[test]
        fn every_commit_round_trips(commit: Commit) {
            let (bytes, hash) = commit.encode().unwrap();
            let (decoded, decoded_hash) = Commit::decode(&bytes).unwrap();
            prop_assert_eq!(decoded, commit);
            prop_assert_eq!(decoded_hash, hash);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes: Vec<u8>) {
            let _ = Commit::decode(&bytes);
        }
    }
}
