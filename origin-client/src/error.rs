//! The crate's one error type: kinds that tell the caller what to do.

/// Everything that can go wrong in the origin.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed (bad path, bad range, bad header).
    #[error("bad request: {0}")]
    BadInput(String),
    /// The caller did not present a valid token.
    #[error("unauthorized")]
    Unauthorized,
    /// The caller may not do this at all (e.g. ingest is disabled).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The store did not answer in time.
    #[error("object store timed out")]
    Timeout,
    /// The origin answered with an unexpected status.
    #[error("origin answered {status}")]
    Upstream {
        /// The origin's HTTP status.
        status: u16,
    },
    /// The origin could not be reached.
    #[error("origin unreachable: {0}")]
    Unreachable(String),
    /// A bug or an impossible state; details in the message.
    #[error("internal: {0}")]
    Internal(String),
    /// The body is larger than the configured limit.
    #[error("body larger than the limit of {limit} bytes")]
    TooLarge {
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The requested range cannot be satisfied for an object of this size.
    #[error("range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// Size of the object in bytes.
        size: u64,
    },
    /// Configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The object store failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local I/O operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
