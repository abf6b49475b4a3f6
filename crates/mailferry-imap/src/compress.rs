//! COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header) in both directions
//! over an established connection, as an [`AsyncRead`] + [`AsyncWrite`] wrapper.
//!
//! Writes are compressed into an internal buffer and sent when it fills or on flush; every
//! flush ends with a sync flush (`Z_SYNC_FLUSH`), so the server can inflate everything written
//! so far, which is what a session needs before it waits for an answer. Reads inflate from an
//! internal buffer of the raw bytes received.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed output held before it is written out without a flush; also the growth step of
/// the output buffer.
const OUT_HIGH_WATER: usize = 32 * 1024;
/// Raw bytes read from the connection at a time.
const IN_CAPACITY: usize = 32 * 1024;
/// Inflated bytes produced per read at most (bounds the zeroing of the caller's buffer).
const READ_CHUNK: usize = 64 * 1024;

/// Bytes in and out of a [`DeflateStream`]: `plain_*` as the session sees them, `wire_*` as
/// they travel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CompressionCounts {
    pub plain_read: u64,
    pub wire_read: u64,
    pub plain_written: u64,
    pub wire_written: u64,
}

/// A stream whose both directions are raw deflate.
pub(crate) struct DeflateStream<S> {
    inner: S,
    deflate: Compress,
    inflate: Decompress,
    /// Compressed bytes not yet written to `inner`, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Input went into the compressor since the last sync flush.
    needs_sync: bool,
    /// Raw bytes read from `inner` and not yet inflated: `raw[raw_start..raw_end]`.
    raw: Box<[u8]>,
    raw_start: usize,
    raw_end: usize,
    /// `inner` reached its end, or the peer ended its deflate stream: reads return EOF.
    read_done: bool,
    wire_read: u64,
    wire_written: u64,
}

impl<S> DeflateStream<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            deflate: Compress::new(Compression::default(), false),
            inflate: Decompress::new(false),
            out: Vec::with_capacity(OUT_HIGH_WATER),
            out_pos: 0,
            needs_sync: false,
            raw: vec![0; IN_CAPACITY].into_boxed_slice(),
            raw_start: 0,
            raw_end: 0,
            read_done: false,
            wire_read: 0,
            wire_written: 0,
        }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    pub(crate) fn counts(&self) -> CompressionCounts {
        CompressionCounts {
            plain_read: self.inflate.total_out(),
            wire_read: self.wire_read,
            plain_written: self.deflate.total_in(),
            wire_written: self.wire_written,
        }
    }

    fn pending_out(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Drops the bytes already written from the front of `out`.
    fn compact_out(&mut self) {
        if self.out_pos > 0 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    fn reserve_out(&mut self) {
        if self.out.capacity() - self.out.len() < 1024 {
            self.out.reserve(OUT_HIGH_WATER);
        }
    }
}

fn deflate_error(error: impl std::error::Error + Send + Sync + 'static) -> io::Error {
    io::Error::other(error)
}

impl<S: AsyncWrite + Unpin> DeflateStream<S> {
    /// Writes all buffered compressed bytes to `inner` (without flushing it).
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
            self.wire_written += n as u64;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }

    /// Ends the deflate data written so far with a sync flush (an empty stored block), once
    /// per batch of input.
    fn sync_flush(&mut self) -> io::Result<()> {
        if !self.needs_sync {
            return Ok(());
        }
        self.compact_out();
        loop {
            self.reserve_out();
            let room = self.out.capacity() - self.out.len();
            let before = self.deflate.total_out();
            self.deflate
                .compress_vec(&[], &mut self.out, FlushCompress::Sync)
                .map_err(deflate_error)?;
            // Done once the compressor had room to spare.
            if ((self.deflate.total_out() - before) as usize) < room {
                break;
            }
        }
        self.needs_sync = false;
        Ok(())
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for DeflateStream<S> {
    /// Reports the bytes of *input* taken; their compressed form may still be buffered.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        loop {
            if this.pending_out() >= OUT_HIGH_WATER {
                ready!(this.poll_write_out(cx))?;
            }
            this.compact_out();
            let start = this.deflate.total_in();
            let mut consumed = 0;
            while consumed < buf.len() && this.pending_out() < OUT_HIGH_WATER {
                this.reserve_out();
                let (in_before, out_before) = (this.deflate.total_in(), this.deflate.total_out());
                this.deflate
                    .compress_vec(&buf[consumed..], &mut this.out, FlushCompress::None)
                    .map_err(deflate_error)?;
                consumed = (this.deflate.total_in() - start) as usize;
                if this.deflate.total_in() == in_before && this.deflate.total_out() == out_before {
                    break;
                }
            }
            if consumed > 0 {
                this.needs_sync = true;
                return Poll::Ready(Ok(consumed));
            }
            // The compressor gave out what it held without taking input yet (a full block of
            // incompressible bytes): write that out first, then it takes more.
            if this.pending_out() >= OUT_HIGH_WATER {
                continue;
            }
            return Poll::Ready(Err(io::Error::other("the compressor took no input")));
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sync_flush()?;
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.sync_flush()?;
        ready!(this.poll_write_out(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for DeflateStream<S> {
    /// Inflates what is buffered; reads the connection only when that yields nothing, so it
    /// is pending only when the connection is and no inflated byte is available.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.read_done {
                return Poll::Ready(Ok(()));
            }
            // Called even without new input: the inflater may hold output it had no room for.
            let out = buf.initialize_unfilled_to(buf.remaining().min(READ_CHUNK));
            let (in_before, out_before) = (this.inflate.total_in(), this.inflate.total_out());
            let status = this
                .inflate
                .decompress(
                    &this.raw[this.raw_start..this.raw_end],
                    out,
                    FlushDecompress::None,
                )
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let consumed = (this.inflate.total_in() - in_before) as usize;
            let produced = (this.inflate.total_out() - out_before) as usize;
            this.raw_start += consumed;
            buf.advance(produced);
            if status == Status::StreamEnd {
                // The server ended its deflate stream; nothing after it can be read.
                this.read_done = true;
            }
            if produced > 0 || this.read_done {
                return Poll::Ready(Ok(()));
            }
            if consumed > 0 && this.raw_start < this.raw_end {
                continue;
            }
            // The inflater needs more raw bytes: make room after what is left and read.
            if this.raw_start == this.raw_end {
                this.raw_start = 0;
                this.raw_end = 0;
            } else if this.raw_start > 0 {
                this.raw.copy_within(this.raw_start..this.raw_end, 0);
                this.raw_end -= this.raw_start;
                this.raw_start = 0;
            }
            if this.raw_end == this.raw.len() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the compressed stream makes no progress",
                )));
            }
            let mut raw = ReadBuf::new(&mut this.raw[this.raw_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw))?;
            let n = raw.filled().len();
            if n == 0 {
                // The connection ended: the caller sees EOF.
                this.read_done = true;
                return Poll::Ready(Ok(()));
            }
            this.raw_end += n;
            this.wire_read += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

    /// Text that compresses well, like mail headers and bodies.
    fn text(len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 100);
        let mut i = 0u64;
        while out.len() < len {
            let _ = write!(
                out,
                "Received: from mx{} by mail.example.org; line {i}\r\n",
                i % 7
            );
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// Inflates everything `reader` delivers until `want` bytes came out.
    async fn inflate_from(
        reader: &mut DuplexStream,
        inflate: &mut Decompress,
        want: usize,
    ) -> Vec<u8> {
        let mut plain = Vec::with_capacity(want);
        let mut raw = vec![0u8; 4096];
        while plain.len() < want {
            let n = reader.read(&mut raw).await.unwrap();
            assert!(
                n > 0,
                "the stream ended after {} of {want} bytes",
                plain.len()
            );
            let mut input = &raw[..n];
            while !input.is_empty() {
                plain.reserve(64 * 1024);
                let before = inflate.total_in();
                inflate
                    .decompress_vec(input, &mut plain, FlushDecompress::None)
                    .unwrap();
                input = &input[(inflate.total_in() - before) as usize..];
            }
        }
        plain
    }

    /// Raw deflate of `data`, ended with a sync flush.
    fn deflate_sync(compress: &mut Compress, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 1024);
        let mut input = data;
        loop {
            out.reserve(64 * 1024);
            let before = compress.total_in();
            compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(compress.total_in() - before) as usize..];
            if input.is_empty() && out.capacity() > out.len() {
                break;
            }
        }
        out
    }

    #[tokio::test]
    async fn each_flush_makes_everything_written_readable() {
        let (ours, mut theirs) = duplex(1 << 20);
        let mut stream = DeflateStream::new(ours);
        let mut inflate = Decompress::new(false);
        for (i, line) in [&b"M1 CAPABILITY\r\n"[..], b"M2 NOOP\r\n", b"M3 LOGOUT\r\n"]
            .iter()
            .enumerate()
        {
            stream.write_all(line).await.unwrap();
            stream.flush().await.unwrap();
            let got = inflate_from(&mut theirs, &mut inflate, line.len()).await;
            assert_eq!(&got, line, "command {i}");
        }
        // A flush with nothing new written sends nothing.
        let sent = stream.counts().wire_written;
        stream.flush().await.unwrap();
        assert_eq!(stream.counts().wire_written, sent);
    }

    #[tokio::test]
    async fn split_writes_and_large_writes_arrive_intact_and_smaller() {
        let (ours, mut theirs) = duplex(64 * 1024);
        let payload = text(3 * 1024 * 1024 + 17);
        let expected = payload.clone();
        let reader = tokio::spawn(async move {
            let mut inflate = Decompress::new(false);
            let got = inflate_from(&mut theirs, &mut inflate, expected.len()).await;
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "inflated bytes differ");
            inflate.total_in()
        });
        let mut stream = DeflateStream::new(ours);
        // Odd-sized pieces, some tiny, then one big write.
        let (head, tail) = payload.split_at(100_000);
        let mut rest = head;
        let mut size = 1;
        while !rest.is_empty() {
            let n = size.min(rest.len());
            stream.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            size = size * 3 % 7919 + 1;
        }
        stream.write_all(tail).await.unwrap();
        stream.flush().await.unwrap();
        let wire = reader.await.unwrap();
        let counts = stream.counts();
        assert_eq!(counts.plain_written, payload.len() as u64);
        assert_eq!(counts.wire_written, wire);
        assert!(
            counts.wire_written * 10 < counts.plain_written,
            "text should shrink: {counts:?}"
        );
    }

    #[tokio::test]
    async fn reads_inflate_across_split_and_coalesced_chunks() {
        let (ours, mut theirs) = duplex(8 * 1024);
        let mut compress = Compress::new(Compression::best(), false);
        let first = b"* OK [CAPABILITY IMAP4rev1] ready\r\n".to_vec();
        let big = text(2 * 1024 * 1024);
        let wire_first = deflate_sync(&mut compress, &first);
        let wire_big = deflate_sync(&mut compress, &big);
        let total = first.len() + big.len();
        let writer = tokio::spawn(async move {
            // Byte by byte for the first response, then chunks of odd sizes.
            for b in &wire_first {
                theirs.write_all(&[*b]).await.unwrap();
            }
            for piece in wire_big.chunks(1237) {
                theirs.write_all(piece).await.unwrap();
            }
            theirs
        });
        let mut stream = DeflateStream::new(ours);
        let mut got = Vec::new();
        let mut small = [0u8; 5];
        // A small buffer first: the inflater keeps what does not fit for the next read.
        let n = stream.read(&mut small).await.unwrap();
        got.extend_from_slice(&small[..n]);
        while got.len() < total {
            let mut buf = vec![0u8; 3001];
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "early EOF at {}", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(&got[..first.len()], &first[..]);
        assert!(got[first.len()..] == big[..], "inflated bytes differ");
        let counts = stream.counts();
        assert_eq!(counts.plain_read, total as u64);
        assert!(counts.wire_read * 10 < counts.plain_read, "{counts:?}");
        // The peer closes: EOF, not an error.
        drop(writer.await.unwrap());
        assert_eq!(stream.read(&mut small).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_read_waits_for_the_peer_and_then_completes() {
        let (ours, mut theirs) = duplex(1024);
        let mut stream = DeflateStream::new(ours);
        let mut buf = [0u8; 64];
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), stream.read(&mut buf)).await;
        assert!(pending.is_err(), "nothing was sent, so the read must wait");
        let mut compress = Compress::new(Compression::default(), false);
        theirs
            .write_all(&deflate_sync(&mut compress, b"* BYE\r\n"))
            .await
            .unwrap();
        let n = stream.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"* BYE\r\n");
    }

    #[tokio::test]
    async fn both_directions_over_one_pair() {
        let (a, b) = duplex(16 * 1024);
        let mut client = DeflateStream::new(a);
        let mut server = DeflateStream::new(b);
        let request = text(200_000);
        let answer = text(300_000);
        let expected_request = request.clone();
        let answer_copy = answer.clone();
        let server_task = tokio::spawn(async move {
            let mut got = vec![0u8; expected_request.len()];
            server.read_exact(&mut got).await.unwrap();
            assert!(got == expected_request);
            server.write_all(&answer_copy).await.unwrap();
            server.flush().await.unwrap();
            server
        });
        client.write_all(&request).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0u8; answer.len()];
        client.read_exact(&mut got).await.unwrap();
        assert!(got == answer);
        server_task.await.unwrap();
    }

    /// Pseudo-random bytes: deflate cannot shrink them.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// As APPENDs go out: a command line, a message (text or noise, up to a few hundred KB),
    /// a line end, a flush now and then, over a connection that drains slowly.
    #[tokio::test]
    async fn appends_of_text_and_noise_with_flushes_arrive_intact() {
        let (ours, mut theirs) = duplex(16 * 1024);
        let mut messages = Vec::new();
        for i in 0..40u64 {
            let size = 1_000 + (i as usize * 7_919) % 300_000;
            let mut body = if i % 3 == 0 {
                noise(size, i + 1)
            } else {
                text(size)
            };
            body.extend_from_slice(b"\r\n");
            messages.push(body);
        }
        let mut expected = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            expected
                .extend_from_slice(format!("A{i} APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes());
            expected.extend_from_slice(m);
        }
        let want = expected.clone();
        let reader = tokio::spawn(async move {
            let mut inflate = Decompress::new(false);
            let got = inflate_from(&mut theirs, &mut inflate, want.len()).await;
            assert!(got == want, "inflated bytes differ");
        });
        let mut stream = DeflateStream::new(ours);
        for (i, m) in messages.iter().enumerate() {
            stream
                .write_all(format!("A{i} APPEND INBOX {{{}+}}\r\n", m.len()).as_bytes())
                .await
                .unwrap();
            stream.write_all(&m[..m.len() - 2]).await.unwrap();
            stream.write_all(b"\r\n").await.unwrap();
            if i % 4 == 3 {
                stream.flush().await.unwrap();
            }
        }
        stream.flush().await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_is_an_error() {
        let (ours, mut theirs) = duplex(1024);
        let mut stream = DeflateStream::new(ours);
        // Block type 3 is reserved: invalid deflate.
        theirs.write_all(&[0xff, 0xff, 0xff, 0xff]).await.unwrap();
        let mut buf = [0u8; 16];
        let error = stream.read(&mut buf).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
