//! The HTTP edge: what a connection may cost, and Extra Horizon's error shape for the answers hyper
//! makes itself.
//!
//! hyper answers a few requests without calling the application: a request line over its fixed
//! 64 KiB limit (414), a head over its buffer (about 400 KiB) or with more than 100 headers (431),
//! a request it cannot parse (400). Those answers have an empty body. [`ErrorsInJson`] wraps a connection and rewrites
//! exactly those (a 4xx or 5xx head with `content-length: 0` written on its own, which the
//! application never sends, since every error it answers is JSON) into the `{code, name, message}`
//! JSON of every other error, keeping the status.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// How the HTTP edge treats slow and large requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// How long a request's head may take to arrive (also how long an idle kept-alive connection
    /// stays open; the connection is then closed), and how long a body may pause between its
    /// parts (answered `408`).
    pub read_timeout: Duration,
}

/// The read timeout unless configured.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for Edge {
    fn default() -> Self {
        Self {
            read_timeout: READ_TIMEOUT,
        }
    }
}

/// A connection whose error answers made by hyper are rewritten into Extra Horizon's JSON.
pub struct ErrorsInJson<T> {
    inner: T,
    /// A rewritten answer being written: its bytes, how many are written, and how many bytes of
    /// hyper's answer it stands for.
    replacing: Option<Replacing>,
}

struct Replacing {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl<T> ErrorsInJson<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorsInJson<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorsInJson<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match rewritten(buf) {
                Some(bytes) => {
                    this.replacing = Some(Replacing {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    });
                }
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        let Some(replacing) = this.replacing.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while replacing.written < replacing.bytes.len() {
            let rest = &replacing.bytes[replacing.written..];
            match ready!(Pin::new(&mut this.inner).poll_write(cx, rest))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => replacing.written += n,
            }
        }
        let stands_for = replacing.stands_for;
        this.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// hyper's own error answer in `written` (a whole 4xx or 5xx head with `content-length: 0` and
/// nothing after it) rewritten with a JSON body; `None` for anything else.
fn rewritten(written: &[u8]) -> Option<Vec<u8>> {
    let head = written.strip_suffix(b"\r\n\r\n")?;
    if head.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    let status = StatusCode::from_bytes(parts.next()?.as_bytes()).ok()?;
    if !(status.is_client_error() || status.is_server_error()) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    let empty = headers.iter().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("content-length") && value.trim() == "0"
        })
    });
    let typed = headers.iter().any(|line| {
        line.split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    });
    if !empty || typed {
        return None;
    }
    let body = ApiError::at_the_edge(status, "").body().to_string();
    let mut answer = format!("{version} {status}\r\ncontent-type: application/json\r\n");
    for line in headers {
        if !line
            .split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        {
            answer.push_str(line);
            answer.push_str("\r\n");
        }
    }
    answer.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    Some(answer.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hypers_own_error_answers_get_the_json_shape_and_keep_their_status() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\ndate: Mon, 07 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(rewritten(hyper).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("content-type: application/json"));
        assert!(head.contains("connection: close"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["name"], "BODY_FORMAT_EXCEPTION");
        assert_eq!(json["message"], "Request Header Fields Too Large");
    }

    #[test]
    fn the_applications_answers_are_left_alone() {
        let answers: [&[u8]; 4] = [
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 10\r\n\r\n",
        ];
        for answer in answers {
            assert_eq!(
                rewritten(answer),
                None,
                "{}",
                String::from_utf8_lossy(answer)
            );
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_rewritten_only_from_an_empty_error_head(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Some(answer) = rewritten(&bytes) {
                prop_assert!(bytes.ends_with(b"\r\n\r\n"));
                let answer = String::from_utf8(answer).unwrap();
                prop_assert!(answer.contains("application/json"));
            }
        }
    }
}
