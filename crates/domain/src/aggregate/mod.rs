//! The generic kernel every aggregate type plugs into: the [`Aggregate`] trait
//! (a Decider), the event [`Envelope`] and its wire format, the shared
//! validation rule on [`Snapshot`], and the classes of [`Refusal`].
//!
//! `event-store` and the services drive aggregates only through this module,
//! so a fork adds an entity type by implementing [`Aggregate`] next to `order`.

mod batch;
mod envelope;
mod refusal;
pub mod schemas;
mod snapshot;
pub mod testing;

pub use batch::{BatchError, CommandBatch, CommandMeta, EnvelopeBytes};
pub use envelope::{DecodeError, Envelope, EventPayload};
pub use refusal::{ErrorKind, Refusal};
pub use snapshot::{RECENT_COMMANDS, Snapshot, Verdict};

/// An entity whose history is a sequence of events: the functional Decider.
///
/// `decide` holds every rule; `evolve` only records facts, so it is total.
/// Neither does I/O or reads the clock: ids and times arrive in commands and
/// envelopes from the application layer.
pub trait Aggregate: 'static {
    /// Names the aggregate type on the wire (`"order"`).
    const TYPE: &'static str;
    /// Everything `decide` needs to know; `Default` is the state before any
    /// event. Serializable: stores and changelogs keep it.
    type State: Clone
        + Default
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + serde::Serialize
        + serde::de::DeserializeOwned;
    /// An intention, which may be refused.
    type Command;
    /// A fact, named in the past tense.
    type Event: EventPayload + Clone + PartialEq + std::fmt::Debug + Send + Sync;
    /// Why a command was refused, in words a user can act on, and how a
    /// caller should treat it.
    type Error: Refusal;

    /// The command's type name (`"Confirm"`): a label on metrics and spans,
    /// so it never carries the command's data.
    fn command_name(command: &Self::Command) -> &'static str;

    /// The events a command produces in a state, or why it is refused.
    fn decide(
        command: &Self::Command,
        state: &Self::State,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// The state after an event. Total: it never fails or panics.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// True when no command can change the state any more.
    fn is_terminal(state: &Self::State) -> bool;
}
