//! The one mapping from engine and core errors to gRPC status codes
//! (SPEC section 6, "Errors"). The message is the error's `Display`, which
//! already tells the caller what to do; nothing here decides anything else.

use crate::adapters::engine::EngineError;
use crate::core::CoreError;
use tonic::{Code, Status};

impl From<EngineError> for Status {
    fn from(e: EngineError) -> Status {
        let code = match &e {
            EngineError::Stopped => Code::Unavailable,
            EngineError::Core(core) => match core {
                CoreError::UnknownInquiry(_) | CoreError::UnknownAgent(_) | CoreError::UnknownGroup(_) => {
                    Code::NotFound
                }
                CoreError::PermissionDenied(_) => Code::PermissionDenied,
                CoreError::FailedPrecondition(_) | CoreError::AlreadyFinished(..) => Code::FailedPrecondition,
                CoreError::InvalidArgument(_) => Code::InvalidArgument,
                CoreError::Duplicate(_) => Code::AlreadyExists,
            },
        };
        Status::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_its_code_and_message() {
        let cases = [
            (EngineError::Core(CoreError::UnknownInquiry("q".into())), Code::NotFound),
            (EngineError::Core(CoreError::UnknownAgent("a".into())), Code::NotFound),
            (EngineError::Core(CoreError::UnknownGroup("g".into())), Code::NotFound),
            (EngineError::Core(CoreError::PermissionDenied("no".into())), Code::PermissionDenied),
            (EngineError::Core(CoreError::FailedPrecondition("later".into())), Code::FailedPrecondition),
            (
                EngineError::Core(CoreError::AlreadyFinished("q".into(), crate::core::InquiryState::Completed)),
                Code::FailedPrecondition,
            ),
            (EngineError::Core(CoreError::InvalidArgument("bad".into())), Code::InvalidArgument),
            (EngineError::Core(CoreError::Duplicate("q".into())), Code::AlreadyExists),
            (EngineError::Stopped, Code::Unavailable),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }
}
