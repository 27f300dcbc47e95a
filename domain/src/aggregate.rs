//! The aggregate contract: a pure, synchronous decision function over a folded event history.

use crate::actor::Actor;
use crate::error::DomainError;
use crate::event::AreaEvent;
use crate::id::StreamId;
use crate::value::Timestamp;

/// What a decision may depend on besides the aggregate's own history. Everything impure (the
/// clock, new ids, secrets, what other aggregates look like) is resolved by `commands` first and
/// arrives here or in the command itself, so `handle` stays deterministic and testable.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub actor: &'a Actor,
    pub stream: &'a StreamId,
}

/// One kind of aggregate: a consistency boundary with its own stream per instance.
pub trait Aggregate: Default + Clone + Send + Sync + 'static {
    /// The stream kind, part of every stream name and subject. Never renamed.
    const KIND: &'static str;
    type Command: Send + Sync;
    type Event: AreaEvent;
    type Error: DomainError;

    /// Whether `ctx.actor` may issue `command` here. The command flow always calls this before
    /// `handle`, and only an authorized decision can be appended.
    fn authorize(&self, command: &Self::Command, ctx: &Ctx<'_>) -> Result<(), Self::Error>;

    /// Decides `command` into events, or refuses it. No events means "nothing to do".
    fn handle(
        &self,
        command: &Self::Command,
        ctx: &Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Events to record although `handle` refused `command` with `error` (a wrong code is
    /// counted, say). They are appended like any decision, so concurrent attempts serialise on
    /// the log, and the command is still answered with `error`. None by default.
    fn recorded_refusal(
        &self,
        _command: &Self::Command,
        _error: &Self::Error,
        _ctx: &Ctx<'_>,
    ) -> Vec<Self::Event> {
        Vec::new()
    }

    /// Folds one event into the state. Total: it never panics on any accepted history.
    fn apply(&mut self, event: &Self::Event);

    /// The state after `events`, from scratch.
    fn fold<'e>(events: impl IntoIterator<Item = &'e Self::Event>) -> Self {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// Given/when/then for aggregate tests: `given(events).when(command).then(events)`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::actor::Via;
    use crate::id::Id;
    use std::fmt::Debug;

    pub const NOW: Timestamp = Timestamp(1_700_000_000_000);

    pub fn id(n: u8) -> Id {
        Id::from_bytes([n; 12])
    }

    pub struct Given<A: Aggregate> {
        state: A,
        actor: Actor,
        now: Timestamp,
        on: Id,
    }

    pub fn given<A: Aggregate>(events: &[A::Event]) -> Given<A> {
        Given {
            state: A::fold(events),
            actor: Actor::system(Via::Cli),
            now: NOW,
            on: id(0),
        }
    }

    impl<A: Aggregate> Given<A> {
        pub fn by(mut self, actor: Actor) -> Self {
            self.actor = actor;
            self
        }

        pub fn at(mut self, now: Timestamp) -> Self {
            self.now = now;
            self
        }

        /// The aggregate's id (its stream), `id(0)` unless given.
        pub fn on(mut self, aggregate: Id) -> Self {
            self.on = aggregate;
            self
        }

        pub fn when(self, command: A::Command) -> Then<A> {
            let stream = crate::id::StreamId::of(A::KIND, self.on);
            let ctx = Ctx {
                now: self.now,
                actor: &self.actor,
                stream: &stream,
            };
            let result = self
                .state
                .authorize(&command, &ctx)
                .and_then(|()| self.state.handle(&command, &ctx));
            let recorded = match &result {
                Err(error) if self.state.authorize(&command, &ctx).is_ok() => {
                    self.state.recorded_refusal(&command, error, &ctx)
                }
                _ => Vec::new(),
            };
            // Applying what was decided (or recorded) must never panic.
            let mut state = self.state.clone();
            for event in result.iter().flatten().chain(&recorded) {
                state.apply(event);
            }
            Then { result, recorded }
        }
    }

    pub struct Then<A: Aggregate> {
        result: Result<Vec<A::Event>, A::Error>,
        recorded: Vec<A::Event>,
    }

    impl<A: Aggregate> Then<A>
    where
        A::Event: PartialEq + Debug,
        A::Error: PartialEq + Debug,
    {
        pub fn then(self, expected: &[A::Event]) {
            assert_eq!(self.result.as_deref(), Ok(expected));
        }

        /// Refused, with nothing recorded.
        pub fn then_err(self, expected: A::Error) {
            assert_eq!(self.result, Err(expected));
            assert_eq!(self.recorded, [], "the refusal recorded events");
        }

        /// Refused, with the attempt recorded as `events`.
        pub fn then_refused(self, expected: A::Error, events: &[A::Event]) {
            assert_eq!(self.result, Err(expected));
            assert_eq!(self.recorded, events);
        }

        /// The decision, whichever it was.
        pub fn events_or_error(self) -> Result<Vec<A::Event>, A::Error> {
            self.result
        }

        /// What a refusal recorded (nothing for an accepted command).
        pub fn recorded(self) -> Vec<A::Event> {
            self.recorded
        }

        pub fn events(self) -> Vec<A::Event> {
            match self.result {
                Ok(events) => events,
                Err(error) => panic!("expected events, got {error:?}"),
            }
        }
    }
}
