//! One conformance suite for both `EventLog` implementations.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use vigil_domain::actor::{Actor, Via};
use vigil_domain::commit::{CommandMeta, Commit, Head};
use vigil_domain::event::{Event, RoleEvent};
use vigil_domain::id::{Id, StreamId};
use vigil_domain::log::{BoxStream, Delivery, EventLog, Filter, LogError};
use vigil_domain::users::role::{RoleCreated, RolePermissionsAdded};
use vigil_domain::value::Timestamp;
use vigil_tests::{TestEnv, log_of};

use crate::in_both_deployments;

fn stream(n: u32) -> StreamId {
    let mut bytes = [0u8; 12];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    StreamId::of("role", Id::from_bytes(bytes))
}

fn meta(command: &str) -> CommandMeta {
    CommandMeta {
        command_id: command.to_owned(),
        correlation_id: "test".into(),
        causation_id: None,
        reason: None,
        actor: Actor::system(Via::Cli),
    }
}

fn event(name: &str) -> Event {
    RoleEvent::Created(RoleCreated {
        name: name.into(),
        description: String::new(),
    })
    .into()
}

fn commit(stream: &StreamId, head: Option<&Head>, command: &str, events: Vec<Event>) -> Commit {
    Commit::next(stream.clone(), head, &meta(command), Timestamp(1), events)
}

/// Appends one single-event commit after `head`, returning the new head.
async fn append(
    log: &dyn EventLog,
    stream: &StreamId,
    head: Option<Head>,
    command: &str,
) -> anyhow::Result<Head> {
    let commit = commit(stream, head.as_ref(), command, vec![event(command)]);
    let appended = log.append(&commit, head.map_or(0, |h| h.position)).await?;
    Ok(Head {
        version: appended.version,
        position: appended.position,
        hash: appended.hash,
    })
}

in_both_deployments! {
    async fn appends_are_ordered_and_chained(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let (a, b) = (stream(1), stream(2));
        let a1 = append(log.as_ref(), &a, None, "a1").await?;
        let b1 = append(log.as_ref(), &b, None, "b1").await?;
        let a2 = append(log.as_ref(), &a, Some(a1), "a2").await?;
        assert_eq!((a1.version, a2.version, b1.version), (1, 2, 1));
        assert!(a1.position < b1.position && b1.position < a2.position);
        let read = log.read_stream(&a, 0).await?;
        assert_eq!(read.iter().map(|r| r.position).collect::<Vec<_>>(), vec![a1.position, a2.position]);
        assert_eq!(read[1].commit.prev_hash, a1.hash);
        assert_eq!(vigil_domain::commit::verify_chain(&read), Ok(()));
        let after = log.read_stream(&a, a1.position).await?;
        assert_eq!(after.len(), 1);
        assert_eq!(log.head().await?, a2.position);
        Ok(())
    }
}

in_both_deployments! {
    async fn a_stale_expected_position_conflicts(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let a = stream(1);
        let first = append(log.as_ref(), &a, None, "first").await?;
        let stale = commit(&a, None, "again-as-new", vec![event("x")]);
        assert!(matches!(log.append(&stale, 0).await, Err(LogError::Conflict { .. })));
        let second = append(log.as_ref(), &a, Some(first), "second").await?;
        let behind = commit(&a, Some(&first), "behind", vec![event("y")]);
        assert!(matches!(log.append(&behind, first.position).await, Err(LogError::Conflict { .. })));
        let fresh = commit(&stream(9), None, "claims-history", vec![event("z")]);
        assert!(matches!(log.append(&fresh, second.position).await, Err(LogError::Conflict { .. })));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_retried_commit_returns_the_original_result(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let a = stream(1);
        let original = commit(&a, None, "once", vec![event("once")]);
        let first = log.append(&original, 0).await?;
        assert!(!first.duplicate);
        // Another commit lands in between; the retry still gets the original answer.
        append(log.as_ref(), &stream(2), None, "other").await?;
        let retry = log.append(&original, 0).await?;
        assert!(retry.duplicate);
        assert_eq!((retry.position, retry.version, retry.hash), (first.position, first.version, first.hash));
        assert_eq!(log.read_stream(&a, 0).await?.len(), 1);
        Ok(())
    }
}

in_both_deployments! {
    async fn a_commit_of_several_events_is_one_atomic_entry(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let a = stream(1);
        let granted: Event = RoleEvent::PermissionsAdded(RolePermissionsAdded {
            permissions: vec!["VIEW_USER".into()],
        })
        .into();
        let events = vec![event("role"), granted.clone(), granted];
        let appended = log.append(&commit(&a, None, "several", events.clone()), 0).await?;
        let all = log.read_all(0, 10).await?;
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].position, appended.position);
        assert_eq!(all[0].commit.events, events);
        Ok(())
    }
}

in_both_deployments! {
    async fn read_all_pages_from_a_position(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let mut positions = Vec::new();
        for n in 0..10 {
            positions.push(append(log.as_ref(), &stream(n), None, &format!("c{n}")).await?.position);
        }
        let page = log.read_all(positions[3], 4).await?;
        assert_eq!(page.iter().map(|r| r.position).collect::<Vec<_>>(), positions[4..8].to_vec());
        assert!(log.read_all(positions[9], 10).await?.is_empty());
        Ok(())
    }
}

in_both_deployments! {
    async fn a_subscriber_catches_up_then_tails(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let first = append(log.as_ref(), &stream(1), None, "before").await?;
        let mut subscription = log.subscribe(0);
        let caught_up = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await?;
        assert_eq!(caught_up.map(|r| r.map(|r| r.position)).transpose()?, Some(first.position));
        let later = append(log.as_ref(), &stream(2), None, "after").await?;
        let tailed = tokio::time::timeout(Duration::from_secs(10), subscription.next()).await?;
        assert_eq!(tailed.map(|r| r.map(|r| r.position)).transpose()?, Some(later.position));
        Ok(())
    }
}

in_both_deployments! {
    async fn a_follower_receives_only_the_kinds_it_asked_for(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let group = |n: u32| StreamId::of("group", stream(n).id().expect("an id"));
        let r1 = append(log.as_ref(), &stream(1), None, "r1").await?;
        let g1 = append(log.as_ref(), &group(1), None, "g1").await?;
        let r2 = append(log.as_ref(), &stream(2), None, "r2").await?;
        let g2 = append(log.as_ref(), &group(1), Some(g1), "g2").await?;
        let mut groups = log.follow(0, Filter::Kinds(&["group"]));
        assert_eq!(next(&mut groups).await?, (g1.position, "group".into()));
        assert_eq!(next(&mut groups).await?, (g2.position, "group".into()));
        let mut both = log.follow(r1.position, Filter::Kinds(&["group", "role"]));
        for expected in [g1.position, r2.position, g2.position] {
            assert_eq!(next(&mut both).await?.0, expected);
        }
        // Live: a role commit is skipped, the next group commit arrives.
        let r3 = append(log.as_ref(), &stream(3), None, "r3").await?;
        let g3 = append(log.as_ref(), &group(3), None, "g3").await?;
        assert_eq!(next(&mut groups).await?, (g3.position, "group".into()));
        assert_eq!(next(&mut both).await?.0, r3.position);
        assert_eq!(next(&mut both).await?.0, g3.position);
        // A commit of another kind is not handed out, but the follower hears how far it looked.
        let r4 = append(log.as_ref(), &stream(4), None, "r4").await?;
        let passed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match groups.next().await {
                    Some(Ok(Delivery::Passed(position))) if position >= r4.position => {
                        return Ok(position);
                    }
                    Some(Ok(Delivery::Passed(_))) => continue,
                    other => return Err(anyhow::anyhow!("not a passed position: {other:?}")),
                }
            }
        })
        .await??;
        assert_eq!(passed, r4.position);
        Ok(())
    }
}

in_both_deployments! {
    async fn an_oversized_commit_is_refused(deployment: Deployment) {
        let env = TestEnv::new(deployment).await?;
        let log = log_of(&env).await?;
        let huge = event(&"x".repeat(1024 * 1024 + 1));
        let refused = log.append(&commit(&stream(1), None, "huge", vec![huge]), 0).await;
        assert!(matches!(refused, Err(LogError::TooLarge { .. })), "{refused:?}");
        assert_eq!(log.head().await?, 0);
        Ok(())
    }
}

in_both_deployments! {
    /// The regression Zitadel and Marten shipped: many concurrent writers and a slow reader must
    /// never make the reader skip or reorder a commit.
    async fn concurrent_writers_never_make_a_slow_reader_skip_a_commit(deployment: Deployment) {
        const WRITERS: u32 = 32;
        const COMMITS: u32 = 25;
        let env = TestEnv::new(deployment).await?;
        let log: Arc<dyn EventLog> = log_of(&env).await?;
        let reader_log = log.clone();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut subscription = reader_log.subscribe(0);
            while seen.len() < (WRITERS * COMMITS) as usize {
                let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await?;
                let recorded = next.ok_or_else(|| anyhow::anyhow!("subscription ended"))??;
                seen.push(recorded.position);
                if seen.len() % 50 == 0 {
                    // Slow: the writers race ahead.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            anyhow::Ok(seen)
        });
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let log = log.clone();
            writers.push(tokio::spawn(async move {
                // Half the writers share streams, so they also conflict and retry.
                let target = stream(writer % (WRITERS / 2));
                let mut written = Vec::new();
                let mut done = 0;
                while done < COMMITS {
                    let head = log.read_stream(&target, 0).await?.last().map(|r| r.head());
                    match append(log.as_ref(), &target, head, &format!("w{writer}-{done}")).await {
                        Ok(head) => {
                            written.push(head.position);
                            done += 1;
                        }
                        Err(error) if matches!(error.downcast_ref(), Some(LogError::Conflict { .. })) => {}
                        Err(error) => return Err(error),
                    }
                }
                anyhow::Ok(written)
            }));
        }
        let mut written = BTreeSet::new();
        for writer in writers {
            written.extend(writer.await??);
        }
        let seen = reader.await??;
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "reordered");
        assert_eq!(seen.iter().copied().collect::<BTreeSet<_>>(), written, "skipped or invented a commit");
        Ok(())
    }
}

in_both_deployments! {
    /// Subscribers sharing one live subscription (a tiny ring and broadcast, so they keep falling
    /// behind it and reading on their own again) each see every commit after their start once,
    /// in order, while writers append.
    async fn subscribers_sharing_the_tail_see_every_commit_once(deployment: Deployment) {
        const BEFORE: u32 = 40;
        const DURING: u32 = 160;
        let env = TestEnv::new(deployment).await?;
        let log: Arc<dyn EventLog> = Arc::new(vigil_commands::shared_tail::SharedTail::with_sizes(log_of(&env).await?, 4, 8));
        let mut positions = Vec::new();
        for n in 0..BEFORE {
            positions.push(append(log.as_ref(), &stream(n), None, &format!("before-{n}")).await?.position);
        }
        let mut readers = Vec::new();
        for (reader, after) in [0, positions[9], positions[24], positions[39], 0, positions[39]].into_iter().enumerate() {
            let log = log.clone();
            readers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut subscription = log.subscribe(after);
                while seen.len() < (BEFORE + DURING) as usize - positions_after(after) {
                    let next = tokio::time::timeout(Duration::from_secs(30), subscription.next()).await?;
                    seen.push(next.ok_or_else(|| anyhow::anyhow!("subscription ended"))??.position);
                    if reader % 2 == 0 && seen.len() % 10 == 0 {
                        // Slow: it falls behind the broadcast.
                        tokio::time::sleep(Duration::from_millis(15)).await;
                    }
                }
                anyhow::Ok((after, seen))
            }));
        }
        let mut writers = Vec::new();
        for writer in 0..8 {
            let log = log.clone();
            writers.push(tokio::spawn(async move {
                let mut written = Vec::new();
                for n in 0..DURING / 8 {
                    let target = stream(1000 + writer * 100 + n);
                    written.push(append(log.as_ref(), &target, None, &format!("w{writer}-{n}")).await?.position);
                }
                anyhow::Ok(written)
            }));
        }
        for writer in writers {
            positions.extend(writer.await??);
        }
        for reader in readers {
            let (after, seen) = reader.await??;
            let expected: Vec<u64> = {
                let mut all: Vec<u64> = positions.iter().copied().filter(|p| *p > after).collect();
                all.sort_unstable();
                all
            };
            assert_eq!(seen, expected, "the reader from {after}");
        }
        Ok(())
    }
}

/// How many of the commits appended before the readers start are at or before `after` (positions
/// start at 1 and are consecutive in a new log).
/// The position and stream kind of the next commit `deliveries` hands out.
async fn next(
    deliveries: &mut BoxStream<'static, Result<Delivery, LogError>>,
) -> anyhow::Result<(u64, String)> {
    loop {
        let delivery = tokio::time::timeout(Duration::from_secs(10), deliveries.next()).await?;
        match delivery.ok_or_else(|| anyhow::anyhow!("the subscription ended"))?? {
            Delivery::Commit(recorded) => {
                return Ok((recorded.position, recorded.commit.stream.kind().to_owned()));
            }
            Delivery::Passed(_) => continue,
        }
    }
}

fn positions_after(after: u64) -> usize {
    usize::try_from(after).unwrap_or(usize::MAX)
}
