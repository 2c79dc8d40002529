//! The ABI's enums as Rust types, so plugin code never sees a raw status code.

use std::fmt;

/// What a stream callback tells the host to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hand the headers/body on to the next filter (or the upstream / the client).
    Continue = 0,
    /// Hold the stream: for a body, buffer until a later callback (usually end of stream)
    /// returns `Continue`; for headers, wait until the body callbacks or an http_call
    /// response resume it.
    Pause = 1,
}

/// A non-OK status a host function returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    BadExpression,
    InvalidMemoryAccess,
    Empty,
    CasMismatch,
    ResultMismatch,
    InternalFailure,
    BrokenConnection,
    Unimplemented,
    /// A status this SDK does not know; kept rather than panicking, since a newer host
    /// may add codes.
    Unknown(u32),
}

impl Error {
    pub(crate) fn from_status(code: u32) -> Error {
        match code {
            1 => Error::NotFound,
            2 => Error::BadArgument,
            3 => Error::SerializationFailure,
            4 => Error::ParseFailure,
            5 => Error::BadExpression,
            6 => Error::InvalidMemoryAccess,
            7 => Error::Empty,
            8 => Error::CasMismatch,
            9 => Error::ResultMismatch,
            10 => Error::InternalFailure,
            11 => Error::BrokenConnection,
            12 => Error::Unimplemented,
            other => Error::Unknown(other),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unknown(code) => write!(f, "host status {}", code),
            other => write!(f, "{:?}", other),
        }
    }
}

pub type Result<T> = core::result::Result<T, Error>;

/// Turns a host status into `Result<()>`.
#[inline]
pub(crate) fn check(code: u32) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(Error::from_status(code))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_u32(v: u32) -> LogLevel {
        match v {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Critical,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    HttpRequestBody = 0,
    HttpResponseBody = 1,
    DownstreamData = 2,
    UpstreamData = 3,
    HttpCallResponseBody = 4,
    GrpcReceiveBuffer = 5,
    VmConfiguration = 6,
    PluginConfiguration = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpRequestTrailers = 1,
    HttpResponseHeaders = 2,
    HttpResponseTrailers = 3,
    HttpCallResponseHeaders = 6,
    HttpCallResponseTrailers = 7,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    HttpRequest = 0,
    HttpResponse = 1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

pub type Bytes = Vec<u8>;
