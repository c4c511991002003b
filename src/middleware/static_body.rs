//! A static-files answer (static_files/) as a `Response`: the file range read into memory
//! when small, handed to the socket with sendfile(2) when large (http/h1/send_file.rs; over
//! TLS, where rustls reads what it encrypts in user space, the writer reads it in blocks), the
//! pieces of a multi-range answer memory-mapped (never copied in user space; a file truncated
//! meanwhile fails the write instead of killing the worker: http/body.rs), or read over TLS.
//! Runs on a blocking thread, as `answer` does.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use http::StatusCode;

use super::static_files::{MultipartPiece, StaticBody, StaticResponse};
use crate::http::{HeaderBlock, Response, ResponseBody};

/// Ranges up to this size are read with one pread: cheaper than mapping (two syscalls and
/// page faults) and the copy is small.
const READ_INTO_MEMORY_BYTES: u64 = 64 * 1024;

/// `query`: the request's query string, which a directory redirect keeps. `maps_files`: the
/// ranges of a multi-range answer may be memory-mapped (not over TLS).
pub fn into_response(
    answer: StaticResponse,
    query: Option<&str>,
    maps_files: bool,
) -> io::Result<Response> {
    let status = StatusCode::from_u16(answer.status).map_err(io::Error::other)?;
    let mut headers = HeaderBlock::with_capacity(256);
    let mut declared = None;
    for (name, value) in &answer.headers {
        if name.eq_ignore_ascii_case("content-length") {
            declared = value.parse::<u64>().ok();
        }
        match (*name, query) {
            ("Location", Some(query)) if !query.is_empty() => {
                headers.push(name.as_bytes(), format!("{value}?{query}").as_bytes())
            }
            _ => headers.push(name.as_bytes(), value.as_bytes()),
        }
    }
    let body = match answer.body {
        StaticBody::Empty => ResponseBody::full(Bytes::new()),
        // PERF: sendfile moves the pages without mapping them (benches/e2e static1m).
        StaticBody::File { file, offset, len } if len > READ_INTO_MEMORY_BYTES => {
            ResponseBody::file(file, offset, len)
        }
        StaticBody::File { file, offset, len } => {
            ResponseBody::full(read_range(&file, offset, len)?)
        }
        StaticBody::Multipart { file, parts } => {
            let pieces = parts
                .into_iter()
                .map(|part| match part {
                    MultipartPiece::Literal(bytes) => Ok(Bytes::from(bytes)),
                    MultipartPiece::Range { offset, len } => {
                        file_range(&file, offset, len, maps_files).map(Piece::into_bytes)
                    }
                })
                .collect::<io::Result<Vec<_>>>()?;
            match maps_files {
                true => ResponseBody::mapped_chunks(pieces),
                false => ResponseBody::chunks(pieces),
            }
        }
    };
    // The answer's Content-Length is the header sent (HEAD keeps it with no body).
    let body = match declared {
        Some(length) => body.with_declared_length(length),
        None => body,
    };
    Ok(Response::new(status, headers, body))
}

enum Piece {
    Read(Bytes),
    Mapped(Bytes),
}

impl Piece {
    fn into_bytes(self) -> Bytes {
        match self {
            Piece::Read(bytes) | Piece::Mapped(bytes) => bytes,
        }
    }
}

fn read_range(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = vec![0; len as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(Bytes::from(buf))
}

fn file_range(file: &File, offset: u64, len: u64, maps_files: bool) -> io::Result<Piece> {
    if len <= READ_INTO_MEMORY_BYTES || !maps_files {
        return read_range(file, offset, len).map(Piece::Read);
    }
    // SAFETY: the map is read only by writev (the kernel), never in user space: a file
    // truncated while it is sent fails that write with EFAULT instead of raising SIGBUS.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len as usize)
            .map(file)?
    };
    Ok(Piece::Mapped(Bytes::from_owner(map)))
}
