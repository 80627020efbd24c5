//! The agent's error type.

use crate::protocol::topics::TopicError;

/// Agent errors: only flash and encoding failures; protocol problems are reported through
/// [`Status::last_error`](super::Status::last_error) and result messages.
#[derive(Debug)]
#[non_exhaustive]
pub enum AgentError<E> {
    /// A flash operation failed (e.g. power loss in the simulator).
    Flash(E),
    /// A topic could not be built from the configuration.
    Topic(TopicError),
    /// An outbound message did not fit [`OUT_MAX`](super::OUT_MAX).
    BufferTooSmall,
    /// A trailer holds values the agent cannot write over (see [`crate::boot::BootError`]).
    Trailer(crate::flashmap::AreaKind),
}

impl<E> AgentError<E> {
    pub(super) fn from_boot(e: crate::boot::BootError<E>) -> Self {
        match e {
            crate::boot::BootError::Flash { error, .. } => Self::Flash(error),
            crate::boot::BootError::Corrupted(area) => Self::Trailer(area),
            _ => Self::Trailer(crate::flashmap::AreaKind::Secondary),
        }
    }
}

impl<E: core::fmt::Debug> core::fmt::Display for AgentError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Flash(e) => write!(f, "secondary slot flash error: {e:?}"),
            Self::Topic(e) => write!(f, "bad topic configuration: {e:?}"),
            Self::BufferTooSmall => f.write_str("outbound message too long"),
            Self::Trailer(a) => write!(f, "{a} trailer cannot be written"),
        }
    }
}

#[cfg(feature = "std")]
impl<E: core::fmt::Debug> std::error::Error for AgentError<E> {}
