//! Task schedules: a function run every `interval` seconds from `startTimestamp`
//! (`/tasks/v1/schedules`).
//!
//! A schedule's slots are `start + k·interval`. Firing is a command on the schedule's stream that
//! names the next slot the firing node saw: decided with optimistic concurrency, it succeeds once
//! per slot whichever nodes try, before or after restarts. A scheduler that was late or down
//! fires the slot it was waiting for once, and moves `next` past now (the slots it missed after
//! that one are not made up). Each
//! firing names the task it causes, derived from the schedule and the slot, which the scheduler
//! then creates.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::aggregate::{Aggregate, Ctx};
use crate::error::{DomainError, ExhCode};
use crate::event::events;
use crate::id::Id;
use crate::json::JsonOf;
use crate::tasks::task::DATA_BYTES;
use crate::value::Timestamp;

/// The longest interval: a year.
pub const LONGEST_INTERVAL_SECONDS: u64 = 366 * 24 * 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ScheduleCreated {
    pub function_name: String,
    pub interval_seconds: u64,
    pub data: JsonOf<Map<String, Value>>,
    pub priority: i64,
    pub start_at: Timestamp,
    pub created_by_user: Option<Id>,
    pub created_by_application: Option<Id>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ScheduleFired {
    /// The slot fired.
    pub slot: Timestamp,
    /// The slot after it, the first after the firing.
    pub next: Timestamp,
    /// The task the firing causes.
    pub task_id: Id,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(proptest_derive::Arbitrary))]
pub struct ScheduleDeleted {}

events! {
    pub enum ScheduleEvent {
        Created(ScheduleCreated) = "schedule.created",
        Fired(ScheduleFired) = "schedule.fired",
        Deleted(ScheduleDeleted) = "schedule.deleted",
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleCommand {
    Create(ScheduleCreated),
    /// Fires the slot that is due, if `next` is still the schedule's next slot.
    Fire {
        next: Timestamp,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("permission {0} is required")]
    NoPermission(&'static str),
    #[error("no schedule has this id")]
    Unknown,
    #[error("this schedule exists already")]
    AlreadyExists,
    #[error("this slot was fired already")]
    Fired,
    #[error("the schedule's next slot has not come yet")]
    NotDue,
    #[error("{0}")]
    Invalid(String),
}

impl DomainError for ScheduleError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::Unknown => ExhCode::ResourceUnknown,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Fired | Self::NotDue => ExhCode::IllegalState,
            Self::Invalid(_) => ExhCode::FieldFormat,
        }
    }
}

/// A schedule while it exists: what it runs and its next slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    pub created: Option<ScheduleCreated>,
    pub next: Option<Timestamp>,
}

/// The first slot of a schedule starting at `start` every `interval` seconds that is after `now`
/// (the start itself while it has not come).
pub fn slot_after(start: Timestamp, interval_seconds: u64, now: Timestamp) -> Timestamp {
    if now < start {
        return start;
    }
    let interval = i64::try_from(interval_seconds.saturating_mul(1000))
        .unwrap_or(i64::MAX)
        .max(1);
    let passed = (now.millis() - start.millis()) / interval + 1;
    Timestamp(
        start
            .millis()
            .saturating_add(passed.saturating_mul(interval)),
    )
}

fn check(schedule: &ScheduleCreated) -> Result<(), ScheduleError> {
    if !(1..=LONGEST_INTERVAL_SECONDS).contains(&schedule.interval_seconds) {
        return Err(ScheduleError::Invalid(format!(
            "`interval` is 1 to {LONGEST_INTERVAL_SECONDS} seconds"
        )));
    }
    if crate::tasks::function::stream(&schedule.function_name).is_err() {
        return Err(ScheduleError::Invalid(
            "`functionName` is a function's name".into(),
        ));
    }
    let bytes = serde_json::to_vec(&schedule.data.0).map_or(usize::MAX, |json| json.len());
    if bytes > DATA_BYTES {
        return Err(ScheduleError::Invalid(format!(
            "A schedule's data is at most {DATA_BYTES} bytes of JSON; this is {bytes}"
        )));
    }
    Ok(())
}

impl Aggregate for Schedule {
    const KIND: &'static str = "schedule";
    type Command = ScheduleCommand;
    type Event = ScheduleEvent;
    type Error = ScheduleError;

    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error> {
        match command {
            ScheduleCommand::Create(_) => ctx
                .actor
                .require("CREATE_TASK_SCHEDULE", ScheduleError::NoPermission),
            ScheduleCommand::Delete => ctx
                .actor
                .require("DELETE_TASK_SCHEDULE", ScheduleError::NoPermission),
            ScheduleCommand::Fire { .. } if ctx.actor.is_system() => Ok(()),
            ScheduleCommand::Fire { .. } => Err(ScheduleError::NoPermission("Vigil itself")),
        }
    }

    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error> {
        match (command, &self.created, self.next) {
            (ScheduleCommand::Create(created), None, _) => {
                check(created)?;
                Ok(vec![ScheduleEvent::Created(created.clone())])
            }
            (ScheduleCommand::Create(_), Some(_), _) => Err(ScheduleError::AlreadyExists),
            (_, None, _) | (_, Some(_), None) => Err(ScheduleError::Unknown),
            (ScheduleCommand::Delete, Some(_), Some(_)) => {
                Ok(vec![ScheduleEvent::Deleted(ScheduleDeleted {})])
            }
            (ScheduleCommand::Fire { next: seen }, Some(created), Some(next)) => {
                if *seen != next {
                    return Err(ScheduleError::Fired);
                }
                if ctx.now < next {
                    return Err(ScheduleError::NotDue);
                }
                let slot = next;
                let after = slot_after(created.start_at, created.interval_seconds, ctx.now);
                let seed = format!("schedule/{}/{}", ctx.stream, slot.millis());
                Ok(vec![ScheduleEvent::Fired(ScheduleFired {
                    slot,
                    next: after,
                    task_id: Id::derived(slot, seed.as_bytes()),
                })])
            }
        }
    }

    fn apply(&mut self, event: &Self::Event) {
        match event {
            ScheduleEvent::Created(e) => {
                self.next = Some(e.start_at);
                self.created = Some(e.clone());
            }
            ScheduleEvent::Fired(e) => self.next = Some(e.next),
            ScheduleEvent::Deleted(_) => self.next = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::testing::{NOW, given, id};

    fn created() -> ScheduleCreated {
        ScheduleCreated {
            function_name: "report".into(),
            interval_seconds: 60,
            data: JsonOf(Map::new()),
            priority: 0,
            start_at: NOW,
            created_by_user: Some(id(1)),
            created_by_application: None,
        }
    }

    fn fired(at: &[ScheduleEvent], now: Timestamp) -> Result<Vec<ScheduleEvent>, ScheduleError> {
        let next = Schedule::fold(at).next.unwrap_or_default();
        given::<Schedule>(at)
            .at(now)
            .when(ScheduleCommand::Fire { next })
            .events_or_error()
    }

    #[test]
    fn slots_follow_the_start_every_interval() {
        let start = Timestamp(1_000);
        assert_eq!(slot_after(start, 10, Timestamp(0)), start);
        assert_eq!(slot_after(start, 10, start), Timestamp(11_000));
        assert_eq!(slot_after(start, 10, Timestamp(10_999)), Timestamp(11_000));
        assert_eq!(slot_after(start, 10, Timestamp(11_000)), Timestamp(21_000));
    }

    #[test]
    fn a_slot_fires_once_when_it_has_come() {
        let events = vec![ScheduleEvent::Created(created())];
        assert_eq!(
            fired(&events, Timestamp(NOW.millis() - 1)),
            Err(ScheduleError::NotDue)
        );
        let first = fired(&events, NOW).unwrap();
        let [ScheduleEvent::Fired(firing)] = first.as_slice() else {
            panic!("{first:?}")
        };
        assert_eq!(firing.slot, NOW);
        assert_eq!(firing.next, NOW.plus_seconds(60));
        // Another node that saw the same next slot is refused.
        let mut after = events.clone();
        after.extend(first.clone());
        given::<Schedule>(&after)
            .at(NOW.plus_seconds(1))
            .when(ScheduleCommand::Fire { next: NOW })
            .then_err(ScheduleError::Fired);
        // Down for ten minutes: the slot it waited for fires once, the next is after now.
        let late = fired(&after, NOW.plus_seconds(610)).unwrap();
        let [ScheduleEvent::Fired(late)] = late.as_slice() else {
            panic!("{late:?}")
        };
        assert_eq!(late.slot, NOW.plus_seconds(60));
        assert_eq!(late.next, NOW.plus_seconds(660));
        assert_ne!(late.task_id, firing.task_id);
    }

    #[test]
    fn a_deleted_schedule_fires_no_more() {
        let events = [
            ScheduleEvent::Created(created()),
            ScheduleEvent::Deleted(ScheduleDeleted {}),
        ];
        assert_eq!(fired(&events, NOW), Err(ScheduleError::Unknown));
        given::<Schedule>(&events)
            .when(ScheduleCommand::Delete)
            .then_err(ScheduleError::Unknown);
    }

    #[test]
    fn intervals_and_names_are_checked() {
        for bad in [
            ScheduleCreated {
                interval_seconds: 0,
                ..created()
            },
            ScheduleCreated {
                function_name: "a b".into(),
                ..created()
            },
        ] {
            assert!(matches!(
                given::<Schedule>(&[])
                    .when(ScheduleCommand::Create(bad))
                    .events_or_error(),
                Err(ScheduleError::Invalid(_))
            ));
        }
    }
}
