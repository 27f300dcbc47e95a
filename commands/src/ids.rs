//! New ids and the clock: the impure inputs the domain receives through its command context.

use std::sync::atomic::{AtomicU32, Ordering};

use vigil_domain::id::Id;
use vigil_domain::value::Timestamp;

/// The current server time.
pub fn now() -> Timestamp {
    Timestamp::now()
}

/// ObjectId-shaped ids: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter. Sortable
/// by creation time like Extra Horizon's, unique without coordination.
pub struct IdGenerator {
    process: [u8; 5],
    counter: AtomicU32,
}

impl IdGenerator {
    pub fn new() -> Self {
        Self {
            process: rand::random(),
            counter: AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff),
        }
    }

    pub fn next(&self) -> Id {
        let seconds = u32::try_from(now().millis() / 1000).unwrap_or(u32::MAX);
        let count = self.counter.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(&self.process);
        bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
        Id::from_bytes(bytes)
    }
}

impl Default for IdGenerator {
    fn default() -> Self {
        Self::new()
    }
}

/// A fresh command or correlation id (32 hex digits).
pub fn command_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let ids = IdGenerator::new();
        let made: Vec<Id> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(made.iter().collect::<HashSet<_>>().len(), made.len());
        let first_second = u32::from_be_bytes(made[0].as_bytes()[..4].try_into().unwrap());
        let now_second = u32::try_from(now().millis() / 1000).unwrap();
        assert!(now_second - first_second <= 1);
    }
}
