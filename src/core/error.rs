//! Errors a command can meet. Each message says what to do about it.

use super::types::{Id, InquiryState};
use thiserror::Error;

/// Why the core refused a command. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoreError {
    #[error("inquiry `{0}` is not known; check the id (finished inquiries are kept for a limited time)")]
    UnknownInquiry(Id),
    #[error("agent `{0}` is not known; the desktop must call SetPresence first")]
    UnknownAgent(Id),
    #[error("group `{0}` is not configured; use one of the group ids in the configuration")]
    UnknownGroup(String),
    #[error("inquiry `{0}` was already received; duplicates are ignored")]
    Duplicate(Id),
    #[error("inquiry `{0}` is already finished ({state}); nothing to do", state = .1.name())]
    AlreadyFinished(Id, InquiryState),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    InvalidArgument(String),
}
