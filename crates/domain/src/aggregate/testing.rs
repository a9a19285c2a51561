//! Given/when/then for deciders: `given(past events).when(command).then(new events)`.
//!
//! ```
//! # use domain::aggregate::testing::given;
//! # use domain::order::{OrderAggregate, OrderCommand, OrderError};
//! given::<OrderAggregate>([]).when(OrderCommand::Confirm).then_error(OrderError::NotFound);
//! ```

use std::fmt::Debug;

use super::Aggregate;

/// The past: events already folded into the state.
pub struct Given<A: Aggregate> {
    state: A::State,
}

/// The past and a command to decide.
pub struct When<A: Aggregate> {
    state: A::State,
    command: A::Command,
}

/// Starts a scenario from the state these events fold to.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    Given {
        state: events
            .into_iter()
            .fold(A::State::default(), |state, event| A::evolve(state, &event)),
    }
}

impl<A: Aggregate> Given<A> {
    /// The command under test.
    pub fn when(self, command: A::Command) -> When<A> {
        When {
            state: self.state,
            command,
        }
    }
}

impl<A: Aggregate> When<A>
where
    A::Command: Debug,
{
    /// Asserts the command is accepted with exactly these events.
    #[track_caller]
    pub fn then(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match A::decide(&self.command, &self.state) {
            Ok(events) => assert_eq!(events, expected, "events of {:?}", self.command),
            Err(error) => panic!(
                "{:?} was refused ({error}); expected {expected:?}",
                self.command
            ),
        }
    }

    /// Asserts the command is refused with exactly this error.
    #[track_caller]
    pub fn then_error(self, expected: A::Error)
    where
        A::Error: PartialEq + Debug,
    {
        match A::decide(&self.command, &self.state) {
            Ok(events) => panic!(
                "{:?} was accepted with {events:?}; expected {expected:?}",
                self.command
            ),
            Err(error) => assert_eq!(error, expected, "error of {:?}", self.command),
        }
    }
}
