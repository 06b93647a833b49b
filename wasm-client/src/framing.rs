//! gRPC-web framing (the `application/grpc-web+proto` wire form), by hand.
//!
//! A body is a sequence of frames `[flags: u8][length: u32 big-endian][payload]`.
//! Flag `0x00` is a message; flag `0x80` is the trailers frame, whose payload
//! is HTTP/1 header lines (`grpc-status: 0\r\ngrpc-message: ...\r\n`) and
//! which ends the response. Flag bit `0x01` means a compressed message: the
//! client never offers compression, so it is refused. A server that fails
//! before sending anything answers "trailers-only": `grpc-status` in the HTTP
//! headers and an empty body.
//!
//! Nothing here touches JavaScript, so it is tested natively.

use alloc::string::String;
use alloc::vec::Vec;

/// The request and response content type.
pub const CONTENT_TYPE: &str = "application/grpc-web+proto";
/// The frame header: one flags byte and a 4-byte big-endian length.
pub const FRAME_HEADER_BYTES: usize = 5;
/// The largest frame accepted (a hostile length prefix cannot make the client
/// buffer more). Proofs are a few KiB.
pub const MAX_FRAME_BYTES: usize = 16 << 20;

const FLAG_TRAILERS: u8 = 0x80;
const FLAG_COMPRESSED: u8 = 0x01;

/// gRPC status codes used by the client itself.
pub mod code {
    pub const OK: u32 = 0;
    pub const UNKNOWN: u32 = 2;
    pub const INTERNAL: u32 = 13;
    pub const UNAVAILABLE: u32 = 14;
}

/// Frames one message.
pub fn encode_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + message.len());
    out.push(0);
    // Requests are small; a message over 4 GiB cannot be built in wasm32.
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

/// Why a call failed: a non-OK status from the server, or a response that is
/// not valid gRPC-web (then `code` is UNKNOWN, INTERNAL or UNAVAILABLE, as a
/// gRPC client library would report it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallError {
    pub code: u32,
    pub message: String,
}

impl CallError {
    pub fn protocol(message: impl Into<String>) -> Self {
        Self {
            code: code::INTERNAL,
            message: message.into(),
        }
    }
}

impl core::fmt::Display for CallError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "gRPC status {} ({}): {}",
            self.code,
            code_name(self.code),
            self.message
        )
    }
}

impl core::error::Error for CallError {}

/// The canonical name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN_CODE",
    }
}

/// One frame of a response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Message(Vec<u8>),
    Trailers(Status),
}

/// `grpc-status` and `grpc-message` (percent-decoded).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub code: Option<u32>,
    pub message: String,
}

impl Status {
    /// Reads the two fields from `name: value` lines (names are
    /// case-insensitive, lines end in CRLF or LF).
    pub fn from_header_block(block: &[u8]) -> Result<Self, CallError> {
        let text = core::str::from_utf8(block).map_err(|_| CallError::protocol("trailers are not UTF-8"))?;
        let mut status = Self::default();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(CallError::protocol("malformed trailer line"));
            };
            status.set(name.trim(), value.trim())?;
        }
        Ok(status)
    }

    /// Records one header; other names are ignored.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), CallError> {
        if name.eq_ignore_ascii_case("grpc-status") {
            let code = value
                .parse::<u32>()
                .map_err(|_| CallError::protocol("grpc-status is not a number"))?;
            self.code = Some(code);
        } else if name.eq_ignore_ascii_case("grpc-message") {
            self.message = percent_decode(value);
        }
        Ok(())
    }

    /// `Ok(())` for status 0, the error otherwise; a missing status is a
    /// protocol error (the response was cut short).
    pub fn into_result(self) -> Result<(), CallError> {
        match self.code {
            Some(code::OK) => Ok(()),
            Some(code) => Err(CallError {
                code,
                message: self.message,
            }),
            None => Err(CallError {
                code: code::UNAVAILABLE,
                message: String::from("response ended without a grpc-status"),
            }),
        }
    }
}

/// Decodes `%XX` escapes (grpc-message is percent-encoded UTF-8); a malformed
/// escape is kept as is.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a body into frames as its bytes arrive (a stream's chunks need not
/// align with frames).
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
    /// Set once the trailers frame is read: nothing may follow it.
    finished: bool,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether the trailers frame was read.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The next complete frame, `None` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CallError> {
        if self.buffer.is_empty() {
            return Ok(None);
        }
        if self.finished {
            return Err(CallError::protocol("data after the trailers frame"));
        }
        if self.buffer.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let flags = self.buffer[0];
        let length = u32::from_be_bytes([self.buffer[1], self.buffer[2], self.buffer[3], self.buffer[4]]) as usize;
        if length > MAX_FRAME_BYTES {
            return Err(CallError::protocol("frame larger than the client accepts"));
        }
        if flags & FLAG_COMPRESSED != 0 {
            return Err(CallError::protocol("compressed frame, but no compression was offered"));
        }
        if flags & !(FLAG_TRAILERS | FLAG_COMPRESSED) != 0 {
            return Err(CallError::protocol("unknown frame flags"));
        }
        if self.buffer.len() < FRAME_HEADER_BYTES + length {
            return Ok(None);
        }
        let payload = self.buffer[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + length].to_vec();
        self.buffer.drain(..FRAME_HEADER_BYTES + length);
        if flags & FLAG_TRAILERS != 0 {
            self.finished = true;
            return Ok(Some(Frame::Trailers(Status::from_header_block(&payload)?)));
        }
        Ok(Some(Frame::Message(payload)))
    }

    /// Checks the end of the body: no partial frame left over.
    pub fn finish(&self) -> Result<(), CallError> {
        if self.buffer.is_empty() {
            Ok(())
        } else {
            Err(CallError::protocol("body ends inside a frame"))
        }
    }
}

/// The one message of a unary response. `headers` is the status found in the
/// HTTP headers (a trailers-only response), `body` the whole body.
pub fn unary_response(headers: Status, body: &[u8]) -> Result<Vec<u8>, CallError> {
    if headers.code.is_some() && body.is_empty() {
        headers.into_result()?;
        return Err(CallError::protocol("OK status without a response message"));
    }
    let mut reader = FrameReader::new();
    reader.push(body);
    let mut message = None;
    let mut trailers = None;
    while let Some(frame) = reader.next_frame()? {
        match frame {
            Frame::Message(payload) => {
                if message.is_some() {
                    return Err(CallError::protocol("more than one message in a unary response"));
                }
                message = Some(payload);
            }
            Frame::Trailers(status) => trailers = Some(status),
        }
    }
    reader.finish()?;
    let status = match (trailers, headers.code) {
        (Some(status), _) => status,
        (None, Some(_)) => headers,
        (None, None) => Status::default(),
    };
    status.into_result()?;
    message.ok_or_else(|| CallError::protocol("OK status without a response message"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    fn trailers(text: &str) -> Vec<u8> {
        let mut out = alloc::vec![FLAG_TRAILERS];
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
        out
    }

    #[test]
    fn unary_ok() {
        let mut body = encode_frame(b"hello");
        body.extend(trailers("grpc-status:0\r\ngrpc-message:\r\n"));
        assert_eq!(unary_response(Status::default(), &body).unwrap(), b"hello");
    }

    #[test]
    fn unary_empty_message_is_a_message() {
        let mut body = encode_frame(b"");
        body.extend(trailers("grpc-status: 0\r\n"));
        assert_eq!(unary_response(Status::default(), &body).unwrap(), b"");
    }

    #[test]
    fn unary_error_in_trailers() {
        let body = trailers("Grpc-Status: 11\r\ngrpc-message: version%2042 not%20held\r\n");
        let error = unary_response(Status::default(), &body).unwrap_err();
        assert_eq!(error.code, 11);
        assert_eq!(error.message, "version 42 not held");
        assert!(error.to_string().contains("OUT_OF_RANGE"));
    }

    #[test]
    fn trailers_only_in_headers() {
        let mut headers = Status::default();
        headers.set("grpc-status", "16").unwrap();
        headers.set("grpc-message", "missing%20token").unwrap();
        let error = unary_response(headers, b"").unwrap_err();
        assert_eq!((error.code, error.message.as_str()), (16, "missing token"));
    }

    #[test]
    fn missing_status_fails() {
        let body = encode_frame(b"hello");
        assert_eq!(
            unary_response(Status::default(), &body).unwrap_err().code,
            code::UNAVAILABLE
        );
    }

    #[test]
    fn malformed_bodies_fail() {
        let ok = trailers("grpc-status: 0\r\n");
        let mut two = encode_frame(b"a");
        two.extend(encode_frame(b"b"));
        two.extend(&ok);
        assert!(unary_response(Status::default(), &two).is_err());
        let mut cut = encode_frame(b"abc");
        cut.pop();
        assert!(unary_response(Status::default(), &cut).is_err());
        let mut after = encode_frame(b"a");
        after.extend(&ok);
        after.extend(encode_frame(b"b"));
        assert!(unary_response(Status::default(), &after).is_err());
        let mut compressed = encode_frame(b"a");
        compressed[0] = 1;
        compressed.extend(&ok);
        assert!(unary_response(Status::default(), &compressed).is_err());
        assert!(unary_response(Status::default(), &ok).is_err(), "OK without a message");
        let mut huge = alloc::vec![0u8];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(unary_response(Status::default(), &huge).is_err());
    }

    #[test]
    fn reader_handles_any_chunking() {
        let mut body = encode_frame(b"first");
        body.extend(encode_frame(b"second message"));
        body.extend(trailers("grpc-status: 0\r\n"));
        for chunk in 1..body.len() {
            let mut reader = FrameReader::new();
            let mut frames = Vec::new();
            for piece in body.chunks(chunk) {
                reader.push(piece);
                while let Some(frame) = reader.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            reader.finish().unwrap();
            assert!(reader.finished());
            assert_eq!(
                frames,
                [
                    Frame::Message(b"first".to_vec()),
                    Frame::Message(b"second message".to_vec()),
                    Frame::Trailers(Status {
                        code: Some(0),
                        message: String::new()
                    })
                ]
            );
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%E2%9C%93"), "\u{2713}");
        assert_eq!(percent_decode("100%"), "100%");
    }
}
