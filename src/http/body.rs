//! `ResponseBody`: what a handler answers with. A whole body known up front, a list of
//! chunks, a range of an open file (sent with sendfile(2) where the socket allows), or a
//! stream fed from another thread through a bounded channel (backpressure: the producer
//! blocks while the client is slow), optionally held to a declared Content-Length.

use std::fmt;
use std::fs::File;
use std::io;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks a streaming producer may run ahead of the socket. Bounds memory per response to
/// this many chunks while letting small yields be written together.
pub const STREAM_CHANNEL_CHUNKS: usize = 16;

pub type BodySender = mpsc::Sender<Result<Bytes, BodyError>>;

/// Why a response body ended badly. Either closes the connection, so the client sees a
/// truncated response, never a clean short one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The producer failed after the head was sent (the app raised mid-stream).
    Aborted,
    /// The body did not match the Content-Length the app declared.
    LengthMismatch { declared: u64, produced: u64 },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Aborted => f.write_str("response aborted after its headers were sent"),
            BodyError::LengthMismatch { declared, produced } if produced > declared => write!(
                f,
                "response body is longer than its Content-Length ({declared} bytes declared, at least {produced} produced)"
            ),
            BodyError::LengthMismatch { declared, produced } => write!(
                f,
                "response body is shorter than its Content-Length ({declared} bytes declared, {produced} produced)"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

pub enum Source {
    Full(Bytes),
    Chunks(Vec<Bytes>),
    Stream {
        first: Bytes,
        rx: mpsc::Receiver<Result<Bytes, BodyError>>,
    },
    File(FileRange),
}

/// `len` bytes of an open regular file from `offset`: the writer hands them to the socket
/// with sendfile(2), or reads them in blocks where it cannot (a TLS stream).
pub struct FileRange {
    pub file: File,
    pub offset: u64,
    pub len: u64,
}

impl FileRange {
    /// The range as a read-only mapping, only ever read by the kernel (see `mapped`).
    pub fn map(&self) -> io::Result<Bytes> {
        if self.len == 0 {
            return Ok(Bytes::new());
        }
        // SAFETY: read-only and private to this response; lent to writev, never read in user
        // space, so a file truncated meanwhile fails the write (EFAULT) instead of SIGBUS.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(self.offset)
                .len(self.len as usize)
                .populate()
                .map(&self.file)?
        };
        Ok(Bytes::from_owner(map))
    }
}

/// A body taken apart by a layer that rewrites it (compression).
pub enum BodyContent {
    /// Every byte is here.
    Whole(Vec<Bytes>),
    /// The first chunk is here; the rest arrives through `rest`.
    Stream {
        first: Bytes,
        rest: mpsc::Receiver<Result<Bytes, BodyError>>,
    },
}

pub struct ResponseBody {
    pub(super) source: Source,
    /// The app's Content-Length, when the server must hold the body to it.
    pub(super) declared_length: Option<u64>,
    /// The pieces are a memory-mapped file: the writer never reads them in user space, so a
    /// file truncated meanwhile fails the write (EFAULT) instead of killing the worker (SIGBUS).
    pub(super) mapped: bool,
}

impl ResponseBody {
    /// A body known in full.
    pub fn full(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            source: Source::Full(bytes),
            declared_length: None,
            mapped: false,
        }
    }

    /// A memory-mapped file's bytes (see `mapped`).
    pub fn mapped(bytes: Bytes) -> ResponseBody {
        ResponseBody {
            mapped: true,
            ..ResponseBody::full(bytes)
        }
    }

    /// Several pieces, some of them memory-mapped file ranges (see `mapped`): a
    /// multipart/byteranges answer.
    pub fn mapped_chunks(chunks: Vec<Bytes>) -> ResponseBody {
        ResponseBody {
            mapped: true,
            ..ResponseBody::chunks(chunks)
        }
    }

    /// `len` bytes of `file` from `offset`: sendfile(2) on a plain socket (never copied in
    /// user space), read in blocks elsewhere. Counts as `mapped` for the layers.
    pub fn file(file: File, offset: u64, len: u64) -> ResponseBody {
        ResponseBody {
            source: Source::File(FileRange { file, offset, len }),
            declared_length: None,
            mapped: true,
        }
    }

    /// Several ready chunks, sent with one vectored write.
    pub fn chunks(chunks: Vec<Bytes>) -> ResponseBody {
        ResponseBody {
            source: Source::Chunks(chunks),
            declared_length: None,
            mapped: false,
        }
    }

    /// A body whose first chunk is ready and whose rest arrives through the returned sender.
    pub fn streaming(first: Bytes) -> (ResponseBody, BodySender) {
        Self::streaming_ahead(first, STREAM_CHANNEL_CHUNKS)
    }

    /// `streaming`, with the producer at most `chunks` pieces ahead of the socket: for a
    /// producer whose pieces are large (a proxied body read 64 KiB at a time).
    pub fn streaming_ahead(first: Bytes, chunks: usize) -> (ResponseBody, BodySender) {
        let (tx, rx) = mpsc::channel(chunks);
        let body = ResponseBody {
            source: Source::Stream { first, rx },
            declared_length: None,
            mapped: false,
        };
        (body, tx)
    }

    /// Holds the body to `length` bytes: a longer or shorter body closes the connection.
    pub fn with_declared_length(mut self, length: u64) -> ResponseBody {
        self.declared_length = Some(length);
        self
    }

    /// Several ready chunks, or one, or none, as fits best.
    pub fn from_chunks(mut chunks: Vec<Bytes>) -> ResponseBody {
        match chunks.len() {
            0 => ResponseBody::full(Bytes::new()),
            1 => ResponseBody::full(chunks.pop().expect("invariant: one chunk")),
            _ => ResponseBody::chunks(chunks),
        }
    }

    /// Whether the pieces are a memory-mapped file's (see `mapped`): only the kernel may read
    /// them, so a layer must not rewrite them.
    pub fn is_mapped(&self) -> bool {
        self.mapped
    }

    /// The length the producer declared (its Content-Length), which the body is held to.
    pub fn declared_length(&self) -> Option<u64> {
        self.declared_length
    }

    pub fn into_content(self) -> BodyContent {
        match self.source {
            Source::Full(bytes) => BodyContent::Whole(vec![bytes]),
            Source::Chunks(chunks) => BodyContent::Whole(chunks),
            Source::Stream { first, rx } => BodyContent::Stream { first, rest: rx },
            // Layers leave file bodies alone (`is_mapped`); one that does not reads a mapping.
            Source::File(range) => match range.map() {
                Ok(bytes) => BodyContent::Whole(vec![bytes]),
                Err(error) => {
                    log::error!("Cannot map a file body: {error}");
                    let (tx, rest) = mpsc::channel(1);
                    let _ = tx.try_send(Err(BodyError::Aborted));
                    BodyContent::Stream {
                        first: Bytes::new(),
                        rest,
                    }
                }
            },
        }
    }

    /// The body's length when known before sending it.
    pub fn known_length(&self) -> Option<u64> {
        self.declared_length.or(match &self.source {
            Source::Full(bytes) => Some(bytes.len() as u64),
            Source::Chunks(chunks) => Some(chunks.iter().map(|c| c.len() as u64).sum()),
            Source::Stream { .. } => None,
            Source::File(range) => Some(range.len),
        })
    }
}
