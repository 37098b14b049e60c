//! The body of an upload, watched as it arrives: how fast the client sends, and how much the
//! multipart parser has read that it has not handed on yet.
//!
//! The parser (multer) reads every byte the stream has ready into its buffer before it parses
//! any, and buffers a part's headers, and everything before the first boundary, until it finds
//! their end: bounded by nothing but the whole-body cap, one connection could make the API hold
//! hundreds of MB. It also cannot tell a client that trickles a byte a minute from one that
//! sends. [`Paced`] wraps the body stream under the parser:
//! - it holds the stream back (backpressure, down to the socket) while the parser holds
//!   `max_unparsed` bytes it has not handed on as part data, so a fast client on a slow disk
//!   costs no memory;
//! - if the parser is held back while it looks for a part's headers and cannot find them within
//!   `hold` ([`HOLD`], 2 s), they are too large: the stream fails with [`Fault::Unparsed`];
//! - it fails the stream when the client sends nothing for `stall`, or slower than `min_rate`
//!   over a window of `stall`.
//!
//! The handler turns the [`Fault`] into a precise answer. Time counts against the client only
//! while the server waits for it (the stream is pending), never while the server holds back.

use std::{
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::body::Bytes;
use futures_util::Stream;
use minimoto_common::ErrorCode;
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// How an upload must arrive.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Longest wait for the next byte.
    pub stall: Duration,
    /// Slowest average rate accepted, in bytes a second, over windows of `stall` spent waiting.
    pub min_rate: u64,
    /// Most bytes the parser may hold before handing any of them on.
    pub max_unparsed: u64,
    /// How long the parser may be held back while it looks for a part's headers.
    pub hold: Duration,
}

/// Why the body stream was cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    Stalled(Duration),
    TooSlow {
        rate: f64,
        min_rate: u64,
        window: Duration,
    },
    Unparsed(u64),
}

impl Fault {
    pub fn to_api_error(self) -> ApiError {
        match self {
            Self::Stalled(stall) => ApiError::new(
                ErrorCode::UploadStalled,
                format!("the upload sent nothing for {} s", stall.as_secs_f64()),
            ),
            Self::TooSlow {
                rate,
                min_rate,
                window,
            } => ApiError::new(
                ErrorCode::UploadTooSlow,
                format!(
                    "the upload arrived at {rate:.0} bytes/s over {} s, slower than the floor of {min_rate} bytes/s",
                    window.as_secs()
                ),
            ),
            Self::Unparsed(limit) => ApiError::new(
                ErrorCode::PartHeadersTooLarge,
                format!(
                    "a multipart part's headers, or the bytes before the first part, run over {limit} bytes"
                ),
            ),
        }
    }
}

/// How long the parser may be held back while it looks for a part's headers: it has every byte
/// it may buffer, so a part whose headers end in them is found at once.
pub const HOLD: Duration = Duration::from_secs(2);

/// What the handler and the stream share: bytes received, bytes handed on as part data, whether
/// the handler waits for a part's headers, the stream's waker while it is held back, and the
/// fault that cut the stream, if any.
#[derive(Debug, Default)]
pub struct Watch {
    received: AtomicU64,
    parsed: AtomicU64,
    in_headers: AtomicBool,
    held: Mutex<Option<Waker>>,
    fault: Mutex<Option<Fault>>,
}

impl Watch {
    /// The handler got `n` bytes of part data from the parser: a held-back stream may go on.
    pub fn parsed(&self, n: usize) {
        self.parsed.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(waker) = self.held.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.wake();
        }
    }

    /// The handler waits for the next part's headers (`true`), or has them (`false`).
    pub fn awaiting_part(&self, yes: bool) {
        self.in_headers.store(yes, Ordering::Relaxed);
    }

    fn unparsed(&self) -> u64 {
        self.received
            .load(Ordering::Relaxed)
            .saturating_sub(self.parsed.load(Ordering::Relaxed))
    }

    pub fn fault(&self) -> Option<Fault> {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_fault(&self, fault: Fault) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(fault);
    }
}

/// A body stream under a [`Pace`].
pub struct Paced<S> {
    inner: S,
    pace: Pace,
    watch: Arc<Watch>,
    /// When the current wait for the client began (`None` while we are not waiting).
    waiting_since: Option<Instant>,
    stall_timer: Pin<Box<Sleep>>,
    /// Whether the stream is held back, and until when the parser may look for headers.
    holding: bool,
    hold_timer: Pin<Box<Sleep>>,
    /// Time spent waiting, and bytes received, in the current rate window.
    window_waited: Duration,
    window_bytes: u64,
}

impl<S> std::fmt::Debug for Paced<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paced")
            .field("pace", &self.pace)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

impl<S> Paced<S> {
    pub fn new(inner: S, pace: Pace, watch: Arc<Watch>) -> Self {
        Self {
            inner,
            pace,
            watch,
            waiting_since: None,
            stall_timer: Box::pin(tokio::time::sleep(pace.stall)),
            holding: false,
            hold_timer: Box::pin(tokio::time::sleep(pace.hold)),
            window_waited: Duration::ZERO,
            window_bytes: 0,
        }
    }

    /// Holds the stream back while the parser has `max_unparsed` bytes in hand; `Some` to answer
    /// now (held, or cut), `None` to go on reading.
    fn hold(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Option<Poll<Option<Result<Bytes, std::io::Error>>>> {
        if self.watch.unparsed() < self.pace.max_unparsed {
            self.holding = false;
            return None;
        }
        *self.watch.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        // The handler may have taken data since: look again now that it would wake us.
        if self.watch.unparsed() < self.pace.max_unparsed {
            self.holding = false;
            return None;
        }
        if !self.holding {
            self.holding = true;
            let until = Instant::now() + self.pace.hold;
            self.hold_timer.as_mut().reset(until);
        }
        while self.hold_timer.as_mut().poll(cx).is_ready() {
            if self.watch.in_headers.load(Ordering::Relaxed) {
                let limit = self.pace.max_unparsed;
                return Some(self.cut(Fault::Unparsed(limit)));
            }
            // Held back while the handler stores data (a slow disk): not the client's doing.
            let until = Instant::now() + self.pace.hold;
            self.hold_timer.as_mut().reset(until);
        }
        Some(Poll::Pending)
    }

    fn cut(&self, fault: Fault) -> Poll<Option<Result<Bytes, std::io::Error>>> {
        self.watch.set_fault(fault);
        Poll::Ready(Some(Err(std::io::Error::other(format!("{fault:?}")))))
    }

    /// Accounts for a chunk; the fault it reveals, if any.
    fn arrived(&mut self, len: usize) -> Option<Fault> {
        if let Some(since) = self.waiting_since.take() {
            self.window_waited += since.elapsed();
        }
        self.window_bytes += len as u64;
        self.watch.received.fetch_add(len as u64, Ordering::Relaxed);
        if self.window_waited >= self.pace.stall {
            let rate = self.window_bytes as f64 / self.window_waited.as_secs_f64();
            if rate < self.pace.min_rate as f64 {
                return Some(Fault::TooSlow {
                    rate,
                    min_rate: self.pace.min_rate,
                    window: self.window_waited,
                });
            }
            (self.window_waited, self.window_bytes) = (Duration::ZERO, 0);
        }
        None
    }
}

impl<S, E> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.watch.fault().is_some() {
            return Poll::Ready(None);
        }
        if let Some(answer) = self.hold(cx) {
            return answer;
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.arrived(chunk.len()) {
                Some(fault) => self.cut(fault),
                None => Poll::Ready(Some(Ok(chunk))),
            },
            Poll::Ready(Some(Err(e))) => {
                Poll::Ready(Some(Err(std::io::Error::other(e.to_string()))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if self.waiting_since.is_none() {
                    let now = Instant::now();
                    self.waiting_since = Some(now);
                    let deadline = now + self.pace.stall;
                    self.stall_timer.as_mut().reset(deadline);
                }
                match self.stall_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let stall = self.pace.stall;
                        self.cut(Fault::Stalled(stall))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{StreamExt, stream};

    // Real time, scaled down: a stall of 1 s, a hold of 100 ms.
    fn pace() -> Pace {
        Pace {
            stall: Duration::from_secs(1),
            min_rate: 1000,
            max_unparsed: 100,
            hold: Duration::from_millis(100),
        }
    }

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        stream::iter(
            sizes
                .iter()
                .map(|&n| Ok(Bytes::from(vec![0u8; n])))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn bytes_the_parser_hands_on_do_not_count_against_the_buffer_limit() {
        let watch = Arc::new(Watch::default());
        let mut body = Paced::new(chunks(&[60, 60, 60]), pace(), watch.clone());
        for _ in 0..3 {
            let chunk = body.next().await.expect("chunk").expect("ok");
            watch.parsed(chunk.len());
        }
        assert!(body.next().await.is_none());
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn a_parser_that_cannot_find_a_parts_headers_in_its_buffer_cuts_the_body() {
        let watch = Arc::new(Watch::default());
        watch.awaiting_part(true);
        let mut body = Paced::new(chunks(&[60, 60, 60]), pace(), watch.clone());
        assert!(body.next().await.expect("first").is_ok());
        assert!(body.next().await.expect("second").is_ok());
        // 120 bytes in hand, none handed on: held back, then cut after the hold.
        assert!(body.next().await.expect("an error item").is_err());
        assert_eq!(watch.fault(), Some(Fault::Unparsed(100)));
        assert!(body.next().await.is_none(), "a cut body stays ended");
        let e = watch.fault().expect("fault").to_api_error();
        assert_eq!(e.code, ErrorCode::PartHeadersTooLarge);
        assert!(e.detail.contains("100 bytes"), "{}", e.detail);
    }

    #[tokio::test]
    async fn a_parser_with_data_in_hand_is_held_back_not_cut() {
        let watch = Arc::new(Watch::default());
        let mut body = Paced::new(chunks(&[80, 80, 80]), pace(), watch.clone());
        assert!(body.next().await.expect("first").is_ok());
        assert!(body.next().await.expect("second").is_ok());
        // 160 in hand: the stream waits, well past the hold, until the handler takes data.
        let third = tokio::spawn(async move { body.next().await.map(|r| r.is_ok()) });
        tokio::time::sleep(pace().hold * 5).await;
        assert!(
            !third.is_finished(),
            "held back while the parser has enough"
        );
        watch.parsed(160);
        assert_eq!(third.await.expect("join"), Some(true));
        assert_eq!(watch.fault(), None);
    }

    #[tokio::test]
    async fn silence_for_the_stall_time_cuts_the_body() {
        let watch = Arc::new(Watch::default());
        let mut body = Paced::new(
            stream::pending::<Result<Bytes, std::io::Error>>(),
            pace(),
            watch.clone(),
        );
        assert!(body.next().await.expect("an error item").is_err());
        assert_eq!(watch.fault(), Some(Fault::Stalled(Duration::from_secs(1))));
    }

    #[tokio::test]
    async fn a_drip_just_inside_the_stall_time_is_too_slow() {
        let watch = Arc::new(Watch::default());
        // One byte every 300 ms: never a stall, but 3 bytes/s against a floor of 1000.
        let drip = stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b"x")), ()))
        })
        .boxed();
        let mut body = Paced::new(drip, pace(), watch.clone());
        let mut items = 0;
        while let Some(item) = body.next().await {
            items += 1;
            if let Ok(c) = item {
                watch.parsed(c.len());
            }
        }
        // The window closes with the fourth byte (1.2 s waited); a loaded machine may be later.
        assert!((2..=4).contains(&items), "{items} items before the cut");
        match watch.fault() {
            Some(Fault::TooSlow { min_rate, .. }) => assert_eq!(min_rate, 1000),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_steady_sender_above_the_floor_passes() {
        let watch = Arc::new(Watch::default());
        let steady = stream::unfold(0, |n| async move {
            (n < 30).then_some(())?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 2000])), n + 1))
        })
        .boxed();
        let pace = Pace {
            max_unparsed: u64::MAX,
            ..pace()
        };
        let mut body = Paced::new(steady, pace, watch.clone());
        let mut bytes = 0;
        while let Some(item) = body.next().await {
            bytes += item.expect("ok").len();
        }
        assert_eq!(bytes, 60_000);
        assert_eq!(watch.fault(), None);
    }
}
