//! Writing a response body after its head: as much as is ready goes out in one `write` or
//! `writev`, framed as the head said (a length or chunked), held to a declared length. Small
//! pieces are copied next to the head (one contiguous write costs the kernel less than a
//! multi-buffer one); large ones, and every piece of a mapped file, are lent to `writev`. A
//! file range goes out with sendfile(2) after what precedes it (send_file.rs), or is mapped
//! and lent where the socket cannot take it.

use std::io::{self, IoSlice};
use std::ops::Range;
use std::os::fd::AsRawFd;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::conn::ConnectionError;
use super::encode::ResponseFraming;
use super::send_file::SendFile;
use crate::http::body::{FileRange, Source};
use crate::http::{BodyError, ResponseBody};

/// Body pieces up to this size are copied into the write buffer rather than lent.
const COPY_LIMIT: usize = 4096;
/// Most buffers handed to one `writev` (the kernel's limit is 1024).
const MAX_SLICES: usize = 256;
/// A batch of streamed chunks is written once it holds this much.
const BATCH_BYTES: usize = 256 * 1024;
/// One read of a file body where sendfile cannot be used: bounds the memory per response.
const FILE_READ_BYTES: usize = 256 * 1024;

enum Part {
    Text(Range<usize>),
    Data(Bytes),
}

/// What the next write sends: framing text and small data copied into `text`, large data
/// lent. Reused for every write of a connection.
#[derive(Default)]
pub struct WriteBatch {
    pub text: Vec<u8>,
    /// Where the copied part of `text` that is not yet in `parts` starts.
    text_start: usize,
    parts: Vec<Part>,
    bytes: usize,
}

impl WriteBatch {
    pub fn is_full(&self) -> bool {
        self.bytes + self.text.len() >= BATCH_BYTES || self.parts.len() + 2 >= MAX_SLICES
    }

    fn close_text(&mut self) {
        if self.text.len() > self.text_start {
            self.parts
                .push(Part::Text(self.text_start..self.text.len()));
            self.text_start = self.text.len();
        }
    }

    /// Adds body data, copied when small, unless `lend`: then the bytes are never read in
    /// user space (a mapped file that shrinks would raise SIGBUS; the kernel's copy for
    /// `writev` fails with EFAULT instead).
    pub fn push_data(&mut self, data: Bytes, lend: bool) {
        if data.len() <= COPY_LIMIT && !lend {
            self.text.extend_from_slice(&data);
        } else {
            self.close_text();
            self.bytes += data.len();
            self.parts.push(Part::Data(data));
        }
    }

    /// Adds one chunk of a chunked body with its framing (RFC 9112 §7.1).
    pub fn push_chunk(&mut self, data: Bytes, lend: bool) {
        let mut size = [0u8; 16];
        let digits = hex(data.len() as u64, &mut size);
        self.text.extend_from_slice(digits);
        self.text.extend_from_slice(b"\r\n");
        self.push_data(data, lend);
        self.text.extend_from_slice(b"\r\n");
    }

    /// Sends everything added, then empties the batch.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        let result = if self.parts.is_empty() {
            writer.write_all(&self.text).await
        } else {
            self.close_text();
            let mut slices: Vec<IoSlice<'_>> = self
                .parts
                .iter()
                .map(|part| match part {
                    Part::Text(range) => IoSlice::new(&self.text[range.clone()]),
                    Part::Data(data) => IoSlice::new(data),
                })
                .collect();
            write_all_vectored(writer, &mut slices).await
        };
        // A TLS writer may hold the last records back until flushed; a plain socket's flush
        // does nothing.
        let result = match result {
            Ok(()) => writer.flush().await,
            error => error,
        };
        self.text.clear();
        self.text_start = 0;
        self.parts.clear();
        self.bytes = 0;
        result
    }
}

/// Writes the head already in `batch` and the body; returns the body bytes sent, or the error
/// with the bytes sent before it.
pub async fn write_body<W: AsyncWrite + SendFile + Unpin>(
    writer: &mut W,
    batch: &mut WriteBatch,
    body: ResponseBody,
    framing: ResponseFraming,
) -> Result<u64, (ConnectionError, u64)> {
    let mut sender = BodyWriter {
        batch,
        framing,
        produced: 0,
        lend: body.mapped,
    };
    match body.source {
        Source::Full(data) => sender.push(data)?,
        Source::Chunks(chunks) => {
            for chunk in chunks {
                sender.push(chunk)?;
                if sender.batch.is_full() {
                    sender.flush(writer).await?;
                }
            }
        }
        Source::File(range) if writer.can_send_file() => sender.send_file(writer, range).await?,
        Source::File(range) => sender.read_file(writer, range).await?,
        Source::Stream { first, mut rx } => {
            sender.push(first)?;
            loop {
                sender.flush(writer).await?;
                // PERF: whatever the producer has ready goes out in the same write.
                let Some(next) = rx.recv().await else { break };
                sender.push_produced(next)?;
                while !sender.batch.is_full() {
                    match rx.try_recv() {
                        Ok(next) => sender.push_produced(next)?,
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                    }
                }
                if rx.is_closed() && rx.is_empty() {
                    break;
                }
            }
        }
    }
    sender.finish(writer).await
}

struct BodyWriter<'a> {
    batch: &'a mut WriteBatch,
    framing: ResponseFraming,
    produced: u64,
    /// The body is a file mapping: lend every piece (see `push_data`).
    lend: bool,
}

impl BodyWriter<'_> {
    fn error(&self, error: BodyError) -> (ConnectionError, u64) {
        (ConnectionError::Response(error), self.produced)
    }

    fn push_produced(
        &mut self,
        next: Result<Bytes, BodyError>,
    ) -> Result<(), (ConnectionError, u64)> {
        match next {
            Ok(data) => self.push(data),
            Err(error) => Err(self.error(error)),
        }
    }

    fn push(&mut self, mut data: Bytes) -> Result<(), (ConnectionError, u64)> {
        if data.is_empty() {
            return Ok(());
        }
        if let ResponseFraming::Declared(declared) = self.framing {
            let produced = self.produced + data.len() as u64;
            if produced > declared {
                // Bytes past the declared length would be read as the next response.
                data.truncate((declared - self.produced) as usize);
                self.batch.push_data(data, self.lend);
                self.produced = declared;
                return Err(self.error(BodyError::LengthMismatch { declared, produced }));
            }
        }
        self.produced += data.len() as u64;
        match self.framing {
            ResponseFraming::Chunked => self.batch.push_chunk(data, self.lend),
            _ => self.batch.push_data(data, self.lend),
        }
        Ok(())
    }

    /// Sends what is batched (the head), then the file range from the kernel's page cache.
    async fn send_file<W: AsyncWrite + SendFile + Unpin>(
        &mut self,
        writer: &mut W,
        range: FileRange,
    ) -> Result<(), (ConnectionError, u64)> {
        let mut len = range.len;
        let mut overflow = None;
        if let ResponseFraming::Declared(declared) = self.framing {
            let produced = self.produced + len;
            if produced > declared {
                // Bytes past the declared length would be read as the next response.
                len = declared - self.produced;
                overflow = Some(BodyError::LengthMismatch { declared, produced });
            }
        }
        if len == 0 {
            return overflow.map_or(Ok(()), |error| Err(self.error(error)));
        }
        if self.framing == ResponseFraming::Chunked {
            let mut size = [0u8; 16];
            self.batch.text.extend_from_slice(hex(len, &mut size));
            self.batch.text.extend_from_slice(b"\r\n");
        }
        self.flush(writer).await?;
        let fd = range.file.as_raw_fd();
        let mut offset = range.offset;
        let end = range.offset + len;
        while offset < end {
            let left = (end - offset).min(usize::MAX as u64) as usize;
            let sent = std::future::poll_fn(|cx| writer.poll_send_file(cx, fd, &mut offset, left))
                .await
                .map_err(|error| (error.into(), self.produced))?;
            if sent == 0 {
                // The file shrank after its length was sent: the client must see a cut.
                return Err(self.error(BodyError::Aborted));
            }
            self.produced += sent as u64;
        }
        if self.framing == ResponseFraming::Chunked {
            self.batch.text.extend_from_slice(b"\r\n");
        }
        overflow.map_or(Ok(()), |error| Err(self.error(error)))
    }

    /// For a stream that cannot sendfile (TLS, which encrypts in user space): the range read
    /// in blocks on a blocking thread (never on the I/O thread, never mapped: a mapped file
    /// truncated meanwhile would raise SIGBUS when the stream reads it) and written as data.
    async fn read_file<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        range: FileRange,
    ) -> Result<(), (ConnectionError, u64)> {
        let file = std::sync::Arc::new(range.file);
        let end = range.offset + range.len;
        let mut offset = range.offset;
        while offset < end {
            let want = (end - offset).min(FILE_READ_BYTES as u64) as usize;
            let reading = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut block = vec![0; want];
                let got = std::os::unix::fs::FileExt::read_at(&*reading, &mut block, offset)?;
                block.truncate(got);
                Ok::<_, io::Error>(block)
            })
            .await
            .map_err(io::Error::other)
            .and_then(|read| read)
            .map_err(|error| (error.into(), self.produced))?;
            if read.is_empty() {
                // The file shrank after its length was sent: the client must see a cut.
                return Err(self.error(BodyError::Aborted));
            }
            offset += read.len() as u64;
            self.push(Bytes::from(read))?;
            self.flush(writer).await?;
        }
        Ok(())
    }

    async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
    ) -> Result<(), (ConnectionError, u64)> {
        let produced = self.produced;
        self.batch
            .write_to(writer)
            .await
            .map_err(|error| (error.into(), produced))
    }

    async fn finish<W: AsyncWrite + Unpin>(
        mut self,
        writer: &mut W,
    ) -> Result<u64, (ConnectionError, u64)> {
        match self.framing {
            ResponseFraming::Chunked => self.batch.text.extend_from_slice(b"0\r\n\r\n"),
            ResponseFraming::Declared(declared) if self.produced < declared => {
                let error = BodyError::LengthMismatch {
                    declared,
                    produced: self.produced,
                };
                self.flush(writer).await?;
                return Err(self.error(error));
            }
            _ => {}
        }
        self.flush(writer).await?;
        Ok(self.produced)
    }
}

fn hex(mut value: u64, out: &mut [u8; 16]) -> &[u8] {
    let mut start = out.len();
    loop {
        start -= 1;
        out[start] = b"0123456789abcdef"[(value & 0xf) as usize];
        value >>= 4;
        if value == 0 {
            return &out[start..];
        }
    }
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(
    writer: &mut W,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let written = writer.write_vectored(slices).await?;
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, written);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn small_pieces_are_joined_and_large_ones_lent_in_order() {
        let mut batch = WriteBatch::default();
        batch.text.extend_from_slice(b"HEAD\r\n");
        batch.push_chunk(Bytes::from_static(b"abc"), false);
        batch.push_chunk(Bytes::from(vec![b'x'; COPY_LIMIT + 1]), false);
        batch.push_chunk(Bytes::from_static(b"z"), false);
        batch.text.extend_from_slice(b"0\r\n\r\n");
        let mut wire = Vec::new();
        batch.write_to(&mut wire).await.unwrap();
        let expected = [
            &b"HEAD\r\n3\r\nabc\r\n1001\r\n"[..],
            &vec![b'x'; COPY_LIMIT + 1],
            b"\r\n1\r\nz\r\n0\r\n\r\n",
        ]
        .concat();
        assert_eq!(wire, expected);
        assert!(batch.text.is_empty() && batch.parts.is_empty());
    }

    /// A mapped file truncated while its response is written must fail that write, never
    /// kill the process: before the fix its small piece was copied in user space (SIGBUS).
    #[tokio::test]
    async fn a_truncated_mapped_file_fails_the_write_instead_of_raising_sigbus() {
        let path = std::env::temp_dir().join(format!("ferrogate-map-{}", std::process::id()));
        std::fs::write(&path, vec![b'm'; 3000]).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: read-only mapping of a file this test owns; truncated on purpose below.
        let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        let body = ResponseBody::mapped(Bytes::from_owner(map));
        let mut batch = WriteBatch::default();
        batch.text.extend_from_slice(b"HEAD\r\n");
        // A real socket: the kernel copies from the mapping for writev, and fails cleanly.
        let (client, mut server) = tokio::net::UnixStream::pair().unwrap();
        let sent = write_body(&mut server, &mut batch, body, ResponseFraming::Length(3000)).await;
        std::fs::remove_file(&path).unwrap();
        assert!(sent.is_err(), "a write from a truncated mapping succeeded");
        drop(client);
    }

    fn temp_file(name: &str, content: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("ferrogate-{name}-{}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        (path, file)
    }

    async fn read_all(mut client: tokio::net::UnixStream) -> Vec<u8> {
        let mut wire = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut wire)
            .await
            .unwrap();
        wire
    }

    /// A file range goes out with sendfile after the head, framed as the head said.
    #[tokio::test]
    async fn a_file_range_is_sent_after_the_head_with_sendfile_length_and_chunked() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (path, file) = temp_file("sendfile", &content);
        for framing in [ResponseFraming::Length(200_000), ResponseFraming::Chunked] {
            let body = ResponseBody::file(file.try_clone().unwrap(), 1000, 200_000);
            let (client, mut server) = tokio::net::UnixStream::pair().unwrap();
            assert!(server.can_send_file());
            let reader = tokio::spawn(read_all(client));
            let mut batch = WriteBatch::default();
            batch.text.extend_from_slice(b"HEAD\r\n");
            let sent = write_body(&mut server, &mut batch, body, framing).await;
            assert_eq!(sent.unwrap(), 200_000);
            drop(server);
            let wire = reader.await.unwrap();
            let expected = match framing {
                ResponseFraming::Chunked => [
                    &b"HEAD\r\n30d40\r\n"[..],
                    &content[1000..201_000],
                    b"\r\n0\r\n\r\n",
                ]
                .concat(),
                _ => [&b"HEAD\r\n"[..], &content[1000..201_000]].concat(),
            };
            assert!(
                wire == expected,
                "{framing:?}: {} bytes on the wire",
                wire.len()
            );
        }
        std::fs::remove_file(&path).unwrap();
    }

    /// A writer without sendfile (an in-memory one here, TLS in service) gets the same bytes.
    #[tokio::test]
    async fn a_file_range_is_read_in_blocks_where_the_writer_cannot_sendfile() {
        let content: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
        let (path, file) = temp_file("sendfile-read", &content);
        let mut wire = Vec::new();
        assert!(!wire.can_send_file());
        let mut batch = WriteBatch::default();
        let body = ResponseBody::file(file, 10, 600_000);
        let sent = write_body(
            &mut wire,
            &mut batch,
            body,
            ResponseFraming::Length(600_000),
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        assert_eq!(sent.unwrap(), 600_000);
        assert!(wire == content[10..600_010], "{} bytes written", wire.len());
    }

    /// A file that shrank after its Content-Length was taken: the response is cut (the
    /// connection closes), never completed with other bytes or left hanging.
    #[tokio::test]
    async fn a_file_truncated_before_sendfile_aborts_the_response() {
        let (path, file) = temp_file("sendfile-cut", &[b's'; 100_000]);
        let body = ResponseBody::file(file, 0, 100_000);
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(30_000)
            .unwrap();
        let (client, mut server) = tokio::net::UnixStream::pair().unwrap();
        let reader = tokio::spawn(read_all(client));
        let mut batch = WriteBatch::default();
        let sent = write_body(
            &mut server,
            &mut batch,
            body,
            ResponseFraming::Length(100_000),
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        let (error, produced) = sent.unwrap_err();
        assert!(matches!(
            error,
            ConnectionError::Response(BodyError::Aborted)
        ));
        assert_eq!(produced, 30_000);
        drop(server);
        assert_eq!(reader.await.unwrap().len(), 30_000);
    }

    /// Held to a declared length like any body: the bytes past it are never sent.
    #[tokio::test]
    async fn a_file_range_longer_than_its_declared_length_stops_at_it() {
        let (path, file) = temp_file("sendfile-declared", &[b'd'; 90_000]);
        let body = ResponseBody::file(file, 0, 90_000);
        let (client, mut server) = tokio::net::UnixStream::pair().unwrap();
        let reader = tokio::spawn(read_all(client));
        let mut batch = WriteBatch::default();
        let sent = write_body(
            &mut server,
            &mut batch,
            body,
            ResponseFraming::Declared(80_000),
        )
        .await;
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            sent.unwrap_err().0,
            ConnectionError::Response(BodyError::LengthMismatch {
                declared: 80_000,
                ..
            })
        ));
        drop(server);
        assert_eq!(reader.await.unwrap().len(), 80_000);
    }
}
