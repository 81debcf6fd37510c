//! The crate's error type: what went wrong, in terms the caller can act on.

use std::path::PathBuf;

/// An error of the load tester.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or scenario value makes no sense; the text names it.
    #[error("{0}")]
    BadInput(String),
    /// A server of the cluster could not be reached or did not answer in time.
    #[error("{what}: {source}")]
    Upstream {
        /// What was asked, e.g. `GET http://127.0.0.1:8000/api/v1/streams`.
        what: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A server answered with an unexpected status.
    #[error("{what} answered {status}")]
    Status {
        /// What was asked.
        what: String,
        /// The status code.
        status: u16,
    },
    /// A body could not be read as what it should be (a playlist, JSON).
    #[error("{what}: {reason}")]
    BadBody {
        /// What was read.
        what: String,
        /// Why it is unusable.
        reason: String,
    },
    /// Writing a report failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
