//! One socket write per HTTP/2 flush.
//!
//! h2 writes a DATA frame of more than 256 bytes on a vectored transport as
//! a separate chunk and flushes before it takes the next frame, so a unary
//! answer of a few hundred bytes (a `QueryServiceResponse` of one instance)
//! left as two TCP segments: headers and data, then the trailers. Each
//! segment is a write for the node and a wake-up and a read for the client.
//! Reported as not vectored, the transport gets frames of up to 1 KiB copied
//! into h2's buffer, trailers included; the writes h2 makes between two
//! flushes (a larger frame's header and its payload) are gathered here and
//! leave as one write at the flush. Reading is passed through.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes gathered before a write waits for the socket (backpressure: h2
/// flushes long before this in practice).
const HIGH_WATER: usize = 64 * 1024;

/// A buffer grown beyond this by one large flush is freed once drained, so
/// an idle connection does not keep its largest push's size.
const KEEP_CAPACITY: usize = 16 * 1024;

/// A transport whose writes are gathered until the next flush.
pub struct Coalesced<T> {
    inner: T,
    buf: Vec<u8>,
    /// How much of `buf` the socket has taken.
    sent: usize,
}

impl<T> Coalesced<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Coalesced<T> {
        Coalesced {
            inner,
            buf: Vec::new(),
            sent: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesced<T> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.sent = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesced<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesced<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.buf.len() >= HIGH_WATER {
            ready!(self.poll_drain(cx))?;
        }
        self.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_leave_together_at_the_flush() -> io::Result<()> {
        let (near, mut far) = tokio::io::duplex(1024);
        let mut near = Coalesced::new(near);
        near.write_all(b"head").await?;
        near.write_all(b"er and body").await?;
        let mut got = [0u8; 32];
        // A zero timeout polls the read once: nothing has been written.
        let nothing_yet = tokio::time::timeout(std::time::Duration::ZERO, far.read(&mut got)).await;
        assert!(nothing_yet.is_err(), "nothing is written before the flush");
        near.flush().await?;
        let n = far.read(&mut got).await?;
        assert_eq!(&got[..n], b"header and body");
        Ok(())
    }

    #[tokio::test]
    async fn a_full_buffer_waits_for_the_reader() -> io::Result<()> {
        // A pipe smaller than the high-water mark: the writer stops until
        // the far side reads, and every byte arrives in order.
        let (near, mut far) = tokio::io::duplex(4096);
        let mut near = Coalesced::new(near);
        let data: Vec<u8> = (0..3 * HIGH_WATER).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            for chunk in data.chunks(1000) {
                near.write_all(chunk).await?;
            }
            near.shutdown().await
        });
        let mut got = Vec::new();
        far.read_to_end(&mut got).await?;
        writer.await.map_err(io::Error::other)??;
        assert_eq!(got, expected);
        Ok(())
    }
}
