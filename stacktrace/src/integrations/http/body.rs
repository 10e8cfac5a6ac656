//! Body wrappers that copy the first bytes of a body as it streams through, never holding
//! back a frame and never keeping more than their limit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};

use super::request::RequestState;
use super::tracking::Tracker;
use crate::sync::lock;

/// The first bytes of a body, and how many went by in all.
#[derive(Clone, Debug, Default)]
pub(crate) struct Captured {
    pub(crate) bytes: Vec<u8>,
    pub(crate) seen: u64,
    pub(crate) limit: usize,
}

impl Captured {
    pub(crate) fn new(limit: usize) -> Self {
        Captured {
            bytes: Vec::new(),
            seen: 0,
            limit,
        }
    }

    /// Notes a chunk of `len` bytes whose first contiguous part is `chunk`.
    pub(crate) fn push(&mut self, chunk: &[u8], len: usize) {
        let room = self.limit.saturating_sub(self.bytes.len());
        if room > 0 {
            self.bytes
                .extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        self.seen = self.seen.saturating_add(len as u64);
    }
}

/// The first bytes of a response body, and how many went by in all, as [`Captured`] keeps
/// them; a first frame that fits whole is kept as it is (its buffer shared, not copied), and
/// only what follows it is copied.
#[derive(Clone, Debug, Default)]
pub(crate) struct CapturedFrames {
    first: Bytes,
    more: Vec<u8>,
    seen: u64,
    limit: usize,
}

impl CapturedFrames {
    pub(crate) fn new(limit: usize) -> Self {
        CapturedFrames {
            limit,
            ..CapturedFrames::default()
        }
    }

    pub(crate) fn push(&mut self, data: &Bytes) {
        let len = data.len();
        if self.first.is_empty() && self.more.is_empty() && len <= self.limit {
            self.first = data.clone();
        } else {
            let room = self.limit.saturating_sub(self.bytes().len());
            if room > 0 {
                if self.more.is_empty() {
                    self.more
                        .extend_from_slice(&std::mem::take(&mut self.first));
                }
                self.more.extend_from_slice(&data[..room.min(len)]);
            }
        }
        self.seen = self.seen.saturating_add(len as u64);
    }

    /// The bytes kept.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.more.is_empty() {
            &self.first
        } else {
            &self.more
        }
    }

    /// The bytes that went by in all.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }
}

pin_project_lite::pin_project! {
    /// The request body as the inner service sees it: the same frames, in the same
    /// order, as they arrive; the first bytes are copied for the event and the tracking
    /// entry.
    #[derive(Debug)]
    pub struct RequestBody<B> {
        #[pin]
        inner: B,
        state: Option<Arc<RequestState>>,
    }
}

impl<B> RequestBody<B> {
    pub(crate) fn new(inner: B, state: Option<Arc<RequestState>>) -> Self {
        RequestBody { inner, state }
    }
}

impl<B: Body> Body for RequestBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let (Some(state), Poll::Ready(Some(Ok(frame)))) = (this.state.as_ref(), &polled) {
            if let Some(data) = frame.data_ref() {
                lock(&state.shared)
                    .body
                    .push(data.chunk(), data.remaining());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { data: Option<Bytes> },
    }
}

pin_project_lite::pin_project! {
    /// The response body: the inner service's body passed through frame by frame (its
    /// first bytes copied for request tracking), or the layer's own `500` body when the
    /// handler panicked.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
        tracker: Option<Tracker>,
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Inner { .. } => "inner",
            Kind::Full { .. } => "full",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .field("tracked", &self.tracker.is_some())
            .finish()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B, tracker: Option<Tracker>) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
            tracker,
        }
    }

    pub(crate) fn full(data: Bytes, tracker: Option<Tracker>) -> Self {
        ResponseBody {
            kind: Kind::Full { data: Some(data) },
            tracker,
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let polled = match this.kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        };
        if let Some(tracker) = this.tracker.as_mut() {
            match &polled {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        tracker.data(data);
                    }
                }
                Poll::Ready(None) => {
                    if let Some(t) = this.tracker.take() {
                        t.finish();
                    }
                }
                _ => {}
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_keeps_at_most_its_limit_and_counts_all() {
        let mut c = Captured::new(5);
        c.push(b"abc", 3);
        c.push(b"defgh", 5);
        c.push(b"ij", 2);
        assert_eq!(c.bytes, b"abcde");
        assert_eq!(c.seen, 10);
        let mut none = Captured::new(0);
        none.push(b"abc", 3);
        assert!(none.bytes.is_empty());
    }

    #[test]
    fn captured_frames_keep_what_captured_keeps() {
        let frames: [&[&[u8]]; 6] = [
            &[b"abc", b"defgh", b"ij"],
            &[b"abcde", b"f"],
            &[b"abcdefg"],
            &[b"", b"abc", b"de", b"fg"],
            &[b"ab", b"", b"cdefgh"],
            &[],
        ];
        for limit in [0, 1, 3, 5, 7, 100] {
            for chunks in frames {
                let mut copied = Captured::new(limit);
                let mut kept = CapturedFrames::new(limit);
                for c in chunks {
                    copied.push(c, c.len());
                    kept.push(&Bytes::copy_from_slice(c));
                }
                assert_eq!(kept.bytes(), &copied.bytes[..], "{limit} {chunks:?}");
                assert_eq!(kept.seen(), copied.seen);
            }
        }
    }
}
