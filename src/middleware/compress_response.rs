//! The lifted `Compress` layer on a response: the same decisions as the WSGI object
//! (compress/: negotiation, policy, header rewrite, encoders) applied to a `Response` on its
//! way back to the connection. A whole body is compressed at once (on a blocking thread when
//! large); a streamed one by a task that compresses and flushes each chunk as it comes, still
//! holding the body to the app's Content-Length as the connection would have.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::compress::{
    add_vary_accept_encoding, adjust_headers, compress_all, should_compress, CompressOptions,
    Encoder, Encoding, ResponseFacts,
};
use crate::http::{BodyContent, BodyError, HeaderBlock, Response, ResponseBody};

/// Whole bodies at least this large are compressed off the I/O thread.
const BLOCKING_BYTES: usize = 64 * 1024;

/// What the request said, found when the walk passed the layer.
#[derive(Clone)]
pub struct Negotiated {
    pub options: Arc<CompressOptions>,
    /// `None`: the client accepts no coding we have (the response still says `Vary`).
    pub encoding: Option<Encoding>,
    pub is_head: bool,
}

/// Header bytes as text, one char per byte (latin-1), so any value survives the round trip.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn latin1_bytes(text: &str) -> Vec<u8> {
    text.chars().map(|c| c as u32 as u8).collect()
}

pub async fn compress(response: Response, negotiated: &Negotiated) -> Response {
    let mut headers: Vec<(String, String)> = response
        .headers
        .lines()
        .map(|(name, value)| (latin1(name), latin1(value)))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let facts = ResponseFacts {
        status: response.status.as_u16(),
        content_type: find("content-type"),
        content_encoding: find("content-encoding"),
        content_length: find("content-length").and_then(|v| v.trim().parse().ok()),
        cache_control: find("cache-control"),
        content_range: find("content-range").is_some(),
        request_method_head: negotiated.is_head,
    };
    // A mapped file is read by the kernel only (http/body.rs): it is sent as it is.
    if !should_compress(&facts, &negotiated.options) || response.body.is_mapped() {
        return response;
    }
    let Some(encoding) = negotiated.encoding else {
        add_vary_accept_encoding(&mut headers);
        return with_headers(response, &headers);
    };
    let declared = response.body.declared_length();
    let level = negotiated.options.level;
    let body = match response.body.into_content() {
        BodyContent::Whole(chunks) => {
            let total: usize = chunks.iter().map(Bytes::len).sum();
            if declared.is_some_and(|declared| declared != total as u64) {
                // The connection reports the app's wrong Content-Length; leave it the body.
                let body = ResponseBody::from_chunks(chunks);
                let body = body.with_declared_length(declared.unwrap_or_default());
                return Response { body, ..response };
            }
            let whole = Bytes::from(chunks.concat());
            let compressed = match total >= BLOCKING_BYTES {
                true => {
                    let input = whole.clone();
                    tokio::task::spawn_blocking(move || compress_all(encoding, level, &input))
                        .await
                        .unwrap_or_else(|error| Err(std::io::Error::other(error)))
                }
                false => compress_all(encoding, level, &whole),
            };
            match compressed {
                Ok(compressed) => ResponseBody::full(Bytes::from(compressed)),
                Err(error) => {
                    log::error!("Cannot compress a response ({error}); sent as it is");
                    let body = ResponseBody::full(whole);
                    let body = match declared {
                        Some(length) => body.with_declared_length(length),
                        None => body,
                    };
                    return Response { body, ..response };
                }
            }
        }
        BodyContent::Stream { first, rest } => match Encoder::new(encoding, level) {
            Ok(mut encoder) => match encoder.compress_chunk(&first) {
                Ok(compressed) => {
                    let (body, sender) = ResponseBody::streaming(Bytes::from(compressed));
                    let produced = Produced {
                        declared,
                        seen: first.len() as u64,
                    };
                    tokio::spawn(stream(encoder, rest, sender, produced));
                    body
                }
                Err(error) => {
                    log::error!("Cannot compress a response ({error}); sent as it is");
                    return Response {
                        body: restream(first, rest, declared),
                        ..response
                    };
                }
            },
            Err(error) => {
                log::error!("Cannot start a {} encoder: {error}", encoding.token());
                return Response {
                    body: restream(first, rest, declared),
                    ..response
                };
            }
        },
    };
    adjust_headers(&mut headers, encoding);
    let Response { status, reason, .. } = response;
    let mut compressed = Response::new(status, block(&headers), body);
    compressed.reason = reason;
    compressed
}

/// Bytes of the uncompressed body seen so far, and what the app declared.
struct Produced {
    declared: Option<u64>,
    seen: u64,
}

/// Compresses and forwards each chunk as it comes; ends with the trailer, or with the
/// error that closes the connection (the app's, or a body that broke its Content-Length).
async fn stream(
    mut encoder: Encoder,
    mut rest: mpsc::Receiver<Result<Bytes, BodyError>>,
    sender: mpsc::Sender<Result<Bytes, BodyError>>,
    mut produced: Produced,
) {
    while let Some(chunk) = rest.recv().await {
        let out = match chunk {
            Ok(chunk) => {
                produced.seen += chunk.len() as u64;
                encoder
                    .compress_chunk(&chunk)
                    .map(Bytes::from)
                    .map_err(|_| BodyError::Aborted)
            }
            Err(error) => Err(error),
        };
        let failed = out.is_err();
        if sender.send(out).await.is_err() || failed {
            return;
        }
    }
    let end = match produced.declared {
        Some(declared) if declared != produced.seen => Err(BodyError::LengthMismatch {
            declared,
            produced: produced.seen,
        }),
        _ => encoder
            .finish()
            .map(Bytes::from)
            .map_err(|_| BodyError::Aborted),
    };
    let _ = sender.send(end).await;
}

/// A stream sent on uncompressed (its encoder could not start).
fn restream(
    first: Bytes,
    mut rest: mpsc::Receiver<Result<Bytes, BodyError>>,
    declared: Option<u64>,
) -> ResponseBody {
    let (body, sender) = ResponseBody::streaming(first);
    tokio::spawn(async move {
        while let Some(chunk) = rest.recv().await {
            if sender.send(chunk).await.is_err() {
                return;
            }
        }
    });
    match declared {
        Some(length) => body.with_declared_length(length),
        None => body,
    }
}

fn block(headers: &[(String, String)]) -> HeaderBlock {
    let mut block = HeaderBlock::with_capacity(256);
    for (name, value) in headers {
        block.push(&latin1_bytes(name), &latin1_bytes(value));
    }
    block
}

fn with_headers(response: Response, headers: &[(String, String)]) -> Response {
    Response {
        headers: block(headers),
        ..response
    }
}
