//! The one error type gRPC handlers return, and its mapping to status codes. The client gets a
//! clear message; causes (SQL, broker) go to the log only.

use crate::types::FieldError;

/// Why a request failed, in the terms of DESIGN.md's status codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input; the message names the field.
    #[error(transparent)]
    InvalidArgument(#[from] FieldError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// An illegal state change.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A per-process limit is reached (too many streams); the message says which and what to do.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (database, broker) cannot be reached.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str, #[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        if crate::db::unreachable(&error) {
            Self::Unavailable("database", error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        match &error {
            ServiceError::InvalidArgument(e) => Self::invalid_argument(e.to_string()),
            ServiceError::NotFound(m) => Self::not_found(m),
            ServiceError::AlreadyExists(m) => Self::already_exists(m),
            ServiceError::FailedPrecondition(m) => Self::failed_precondition(m),
            ServiceError::ResourceExhausted(m) => Self::resource_exhausted(m),
            ServiceError::Unavailable(what, cause) => {
                tracing::warn!(
                    error = format!("{cause:#}"),
                    dependency = what,
                    "request failed: dependency unavailable"
                );
                Self::unavailable(format!("{what} unavailable, retry later"))
            }
            ServiceError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "request failed: internal error");
                Self::internal("internal error")
            }
        }
    }
}
