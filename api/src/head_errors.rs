//! hyper's own answers, rewritten as problems.
//!
//! A request head hyper cannot read (a Content-Length that is not a number, two that disagree,
//! more than 100 header lines, a URI too long) never reaches the app: hyper answers it itself
//! with an empty `400`, `431` or `414` and closes. Every other
//! error minimoto sends is `application/problem+json` with `nosniff`, so [`HeadErrors`] wraps
//! the connection's socket and rewrites such an answer on its way out. It recognises one by its
//! shape: a 4xx head with no `Content-Type` and `Content-Length: 0`, alone in its write; the app
//! never sends one (every error it answers carries a problem body).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use minimoto_common::{ErrorCode, problem::Problem};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A socket whose bare 4xx answers leave as problems.
#[derive(Debug)]
pub struct HeadErrors<S> {
    inner: S,
    /// A rewritten answer being written: its bytes, how many are out, and how many of the
    /// caller's bytes it stands for.
    pending: Option<(Vec<u8>, usize, usize)>,
}

impl<S> HeadErrors<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> HeadErrors<S> {
    /// Writes what is left of a rewritten answer; `Ready` with the caller's byte count once done.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        while let Some((bytes, out, stands_for)) = &mut self.pending {
            if *out == bytes.len() {
                let n = *stands_for;
                self.pending = None;
                return Poll::Ready(Ok(Some(n)));
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*out..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *out += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(None))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for HeadErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for HeadErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // A caller that saw `Pending` writes the same bytes again: finish the rewrite of them.
        if self.pending.is_none()
            && let Some(answer) = rewrite(buf)
        {
            self.pending = Some((answer, 0, buf.len()));
        }
        match self.drain(cx) {
            Poll::Ready(Ok(Some(n))) => Poll::Ready(Ok(n)),
            Poll::Ready(Ok(None)) => Pin::new(&mut self.inner).poll_write(cx, buf),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The problem answer that replaces `buf`, if `buf` is exactly a bare 4xx head.
fn rewrite(buf: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(buf.strip_suffix(b"\r\n\r\n")?).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    if !(400..500).contains(&status) {
        return None;
    }
    let mut kept = Vec::new();
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-type") {
            return None;
        }
        if name.eq_ignore_ascii_case("content-length") {
            empty = value.trim() == "0";
        } else {
            kept.push(line);
        }
    }
    if !empty {
        return None;
    }
    // hyper's limits: 100 header lines and a head of 8 KiB + 400 KiB (its default buffer).
    let (code, detail) = match status {
        431 => (
            ErrorCode::HeadersTooLarge,
            "the request head is over the server's limits: at most 100 header lines and 408 KiB",
        ),
        414 => (
            ErrorCode::UriTooLong,
            "the request URI is longer than the server reads",
        ),
        _ => (
            ErrorCode::BadRequest,
            "the request head cannot be read: a malformed header, a Content-Length that is not a \
             number, or two that disagree",
        ),
    };
    let body = Problem::new(status, code.as_str(), detail).to_json();
    let mut out = format!(
        "{status_line}\r\ncontent-type: {}\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\n",
        minimoto_common::problem::CONTENT_TYPE,
        body.len()
    );
    for line in kept {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 18:00:00 GMT\r\n\r\n";

    #[test]
    fn a_bare_400_becomes_a_problem_that_keeps_the_other_headers() {
        let out = rewrite(BARE).expect("rewritten");
        let text = String::from_utf8(out).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains("x-content-type-options: nosniff"));
        assert!(head.contains("date: Tue, 01 Dec 2026 18:00:00 GMT"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            (json["status"].as_u64(), json["code"].as_str()),
            (Some(400), Some("bad-request"))
        );
    }

    #[test]
    fn anything_else_passes_untouched() {
        for buf in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nmore",
            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
            b"{\"id\": 1}",
        ] {
            assert!(rewrite(buf).is_none(), "{}", String::from_utf8_lossy(buf));
        }
    }

    #[tokio::test]
    async fn the_caller_is_told_its_own_byte_count() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (a, mut b) = tokio::io::duplex(16);
        let mut w = HeadErrors::new(a);
        let writer = tokio::spawn(async move {
            // A pipe of 16 bytes: the rewrite goes out in many writes, the caller sees one.
            let n = w.write(BARE).await.expect("write");
            w.shutdown().await.expect("shutdown");
            n
        });
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.expect("read");
        assert_eq!(writer.await.expect("join"), BARE.len());
        assert!(String::from_utf8_lossy(&got).contains("\"code\":\"bad-request\""));
    }
}
