//! Why a document command is refused.

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("document not found")]
    NotFound,
    #[error("No schema with this id or name")]
    UnknownSchema,
    #[error("this document exists already")]
    AlreadyExists,
    #[error("the schema is disabled")]
    SchemaDisabled,
    #[error("the document's data is not valid: {0}")]
    InvalidData(String),
    #[error("{0}")]
    IllegalArgument(String),
    #[error("no transition {0}")]
    UnknownTransition(String),
    #[error("no array element {0}")]
    UnknownElement(String),
    #[error("the document changed since its guard was checked")]
    Stale,
    #[error("the document is in a transition that has not finished yet")]
    Locked,
    #[error("the paused step is not due yet")]
    NotDue,
    #[error("no comment {0}")]
    UnknownComment(Id),
    #[error("permission {0} is required")]
    NoPermission(String),
    /// A document command was run on a stream whose key is not a document id (a defect of the
    /// caller, never of the request).
    #[error("stream {0} is not a document's")]
    NotADocumentStream(crate::id::StreamId),
}

impl DomainError for DocumentError {
    fn exh(&self) -> ExhCode {
        match self {
            Self::NotFound
            | Self::UnknownSchema
            | Self::UnknownTransition(_)
            | Self::UnknownElement(_)
            | Self::UnknownComment(_) => ExhCode::ResourceUnknown,
            Self::Locked => ExhCode::LockedDocument,
            Self::NotDue => ExhCode::IllegalState,
            Self::AlreadyExists => ExhCode::ResourceAlreadyExists,
            Self::Stale => ExhCode::Conflict,
            Self::SchemaDisabled => ExhCode::IllegalState,
            Self::InvalidData(_) => ExhCode::FieldFormat,
            Self::IllegalArgument(_) => ExhCode::IllegalArgument,
            Self::NoPermission(_) => ExhCode::NoPermission,
            Self::NotADocumentStream(_) => ExhCode::Server,
        }
    }
}
