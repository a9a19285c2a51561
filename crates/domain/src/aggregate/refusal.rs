//! How a caller should treat a refused command: each aggregate's error type
//! says which of its refusals is which, and an API maps the classes to its
//! own vocabulary (HTTP: 404, 409, 422).

/// The class of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The entity does not exist.
    NotFound,
    /// The entity exists but is in the wrong state for this command.
    Conflict,
    /// The command breaks a rule whatever the entity's state.
    Invalid,
}

/// An aggregate's reason to refuse a command, in words a user can act on.
pub trait Refusal: std::error::Error + Send + Sync + 'static {
    /// The class of this refusal.
    fn kind(&self) -> ErrorKind;
}
