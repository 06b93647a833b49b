//! The client's error type: every failure is one line, and a failed
//! verification is told apart (exit code 3) from every other error (1).

use std::fmt::Write as _;

/// Why a client command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The server URL is not usable.
    #[error("invalid --server {server:?}: {reason}")]
    BadServer { server: String, reason: String },
    /// No connection could be made.
    #[error("cannot connect to {server}: {reason}")]
    Connect { server: String, reason: String },
    /// The server answered a call with an error status.
    #[error("{call} failed: {code}: {message}")]
    Rpc {
        call: &'static str,
        code: &'static str,
        message: String,
    },
    /// A stream ended or broke.
    #[error("{0}")]
    Stream(String),
    /// An argument or input record is malformed.
    #[error("{0}")]
    Input(String),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// Writing to stdout failed.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// An error with what was being done when it happened.
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<CliError> },
    /// A proof did not verify, a root was not the trusted one, or the server
    /// broke an ordering it promises: the answer cannot be trusted.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl CliError {
    /// The process exit code: 3 for a verification failure, 1 for any other error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Verification(_) => 3,
            Self::Context { inner, .. } => inner.exit_code(),
            _ => 1,
        }
    }

    /// Whether this is a closed stdout (e.g. `rustorium export | head`), which
    /// is no failure of the command.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// Prefixes the error with what was being done.
    pub fn context(self, context: impl Into<String>) -> Self {
        Self::Context {
            context: context.into(),
            inner: Box::new(self),
        }
    }

    pub(crate) fn rpc(call: &'static str, status: &tonic::Status) -> Self {
        Self::Rpc {
            call,
            code: code_name(status.code()),
            message: one_line(status.message()),
        }
    }

    pub(crate) fn verification(reason: impl std::fmt::Display) -> Self {
        Self::Verification(one_line(&reason.to_string()))
    }
}

/// The canonical upper-case name of a gRPC status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Collapses runs of whitespace (newlines included) into single spaces.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its sources, joined by ": ", skipping a source whose text the
/// previous message already contains (tonic repeats them).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        source = e.source();
    }
    one_line(&out)
}
