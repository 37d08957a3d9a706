//! Hanging up on a client: before any answer (the service returns [`Hangup`]), or half-way
//! through the answer's body ([`BrokenBody`]), the two ways an endpoint or a proxy in front of it
//! dies while a request is in flight.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// Makes hyper drop the connection: returned by the service, it leaves the request without a
/// response; yielded by a body, it cuts the response short.
#[derive(Debug)]
pub(crate) struct Hangup;

impl std::fmt::Display for Hangup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed on purpose by the script")
    }
}

impl std::error::Error for Hangup {}

pub(crate) fn is_hangup(e: &hyper::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<Hangup>())
}

/// A body that declares its whole length, so the status and headers promise it, sends only the
/// first half and then hangs up: the client's read of the answer fails after the headers.
pub(crate) struct BrokenBody {
    half: Option<Bytes>,
    whole: u64,
    flushed: bool,
}

impl BrokenBody {
    pub(crate) fn new(mut body: Bytes) -> BrokenBody {
        let whole = body.len() as u64;
        body.truncate(body.len() / 2);
        BrokenBody {
            half: Some(body),
            whole,
            flushed: false,
        }
    }
}

impl Body for BrokenBody {
    type Data = Bytes;
    type Error = Hangup;

    /// The half, then one `Pending` (hyper writes out what it holds while a body waits, so the
    /// head and the half reach the client), then the hang-up.
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Hangup>>> {
        let this = self.get_mut();
        if let Some(half) = this.half.take() {
            return Poll::Ready(Some(Ok(Frame::data(half))));
        }
        if !this.flushed {
            this.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Some(Err(Hangup)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.whole)
    }
}
