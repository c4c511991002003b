//! Writing a response body after its head: as much as is ready goes out in one `write` or
//! `writev`, framed as the head said (a length or chunked), held to a declared length. Small
//! pieces are copied next to the head (one contiguous write costs the kernel less than a
//! multi-buffer one); large ones, and every piece of a mapped file, are lent to `writev`.

use std::io::{self, IoSlice};
use std::ops::Range;

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::conn::ConnectionError;
use super::encode::ResponseFraming;
use crate::http::body::Source;
use crate::http::{BodyError, ResponseBody};

/// Body pieces up to this size are copied into the write buffer rather than lent.
const COPY_LIMIT: usize = 4096;
/// Most buffers handed to one `writev` (the kernel's limit is 1024).
const MAX_SLICES: usize = 256;
/// A batch of streamed chunks is written once it holds this much.
const BATCH_BYTES: usize = 256 * 1024;

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
pub async fn write_body<W: AsyncWrite + Unpin>(
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
}
