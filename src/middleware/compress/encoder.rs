//! The codecs: a streaming [`Encoder`] that compresses a response chunk by chunk and
//! flushes after each one, and [`compress_all`] for a body known in full. Owns the choice
//! of codec crate and its settings; knows nothing of headers, negotiation or the wire. The
//! compression layer creates one `Encoder` per compressed streamed response.

use std::io::{self, Write};

use super::Encoding;

/// Brotli's window, as log2 bytes: 512 KiB. The window is memory held by every response
/// being compressed at once, and web bodies rarely repeat anything further back (brotli's
/// own default, 4 MiB, suits files compressed ahead of time).
const BROTLI_WINDOW_BITS: u32 = 19;

/// The brotli writer's staging buffer for compressed output, in bytes.
const BROTLI_BUFFER_BYTES: usize = 4096;

/// Compresses one response body as it streams.
///
/// Each [`compress_chunk`](Encoder::compress_chunk) returns the compressed bytes for that
/// chunk *flushed*: a client decoding everything it has received so far gets every chunk
/// the app has yielded so far. That is what a streamed response (server-sent events, a
/// progress log, a long report) needs; the price is a few bytes per chunk and a slightly
/// worse ratio, which is why a body known in full goes through [`compress_all`] instead.
pub struct Encoder {
    codec: Codec,
}

/// One variant per codec; each writes into a `Vec` that `Encoder` empties after every call.
enum Codec {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    // Boxed: the brotli state is several KiB, the others a few pointers.
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// A fresh encoder at `level` (clamped to the codec's range; `None` for its on-the-fly
    /// default, see [`Encoding::level`]). Fails only if zstd cannot set up its context, in
    /// which case the caller sends the response uncompressed: nothing has been sent yet.
    pub fn new(encoding: Encoding, level: Option<u32>) -> io::Result<Encoder> {
        let level = encoding.level(level);
        let codec = match encoding {
            Encoding::Gzip => Codec::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level),
            )),
            Encoding::Brotli => Codec::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER_BYTES,
                level,
                BROTLI_WINDOW_BITS,
            ))),
            Encoding::Zstd => Codec::Zstd(zstd::stream::write::Encoder::new(
                Vec::new(),
                zstd_level(level),
            )?),
        };
        Ok(Encoder { codec })
    }

    /// The coding this encoder produces.
    pub fn encoding(&self) -> Encoding {
        match self.codec {
            Codec::Gzip(_) => Encoding::Gzip,
            Codec::Brotli(_) => Encoding::Brotli,
            Codec::Zstd(_) => Encoding::Zstd,
        }
    }

    /// Compresses `chunk` and flushes, returning the bytes to send now. An empty chunk
    /// gives an empty result (nothing is pending, every earlier chunk was flushed), so
    /// the caller must skip writing it: in chunked framing an empty chunk ends the body.
    pub fn compress_chunk(&mut self, chunk: &[u8]) -> io::Result<Vec<u8>> {
        if chunk.is_empty() {
            return Ok(Vec::new());
        }
        // Each codec's flush ends the data so far on a boundary the decoder can act on:
        // gzip's is Z_SYNC_FLUSH, brotli's BROTLI_OPERATION_FLUSH, zstd's ZSTD_e_flush.
        let output = match &mut self.codec {
            Codec::Gzip(writer) => {
                writer.write_all(chunk)?;
                writer.flush()?;
                writer.get_mut()
            }
            Codec::Brotli(writer) => {
                writer.write_all(chunk)?;
                writer.flush()?;
                writer.get_mut()
            }
            Codec::Zstd(writer) => {
                writer.write_all(chunk)?;
                writer.flush()?;
                writer.get_mut()
            }
        };
        // The codecs only ever append to their output Vec, so handing its bytes over
        // leaves them in a consistent state.
        Ok(std::mem::take(output))
    }

    /// Ends the stream, returning its last bytes (the codec's trailer: gzip's CRC and
    /// length, brotli's last metablock, zstd's end of frame).
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self.codec {
            Codec::Gzip(writer) => writer.finish(),
            Codec::Brotli(writer) => Ok(writer.into_inner()),
            Codec::Zstd(writer) => writer.finish(),
        }
    }
}

/// Compresses a body known in full, in one go: no flush between pieces, and codecs that
/// can use the size (brotli's size hint, zstd's frame content size) get it.
pub fn compress_all(encoding: Encoding, level: Option<u32>, body: &[u8]) -> io::Result<Vec<u8>> {
    let level = encoding.level(level);
    match encoding {
        Encoding::Gzip => {
            let mut writer = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 2),
                flate2::Compression::new(level),
            );
            writer.write_all(body)?;
            writer.finish()
        }
        Encoding::Brotli => {
            let params = brotli::enc::BrotliEncoderParams {
                quality: brotli_i32(level),
                lgwin: brotli_i32(BROTLI_WINDOW_BITS),
                size_hint: body.len(),
                ..Default::default()
            };
            let mut output = Vec::with_capacity(body.len() / 2);
            brotli::BrotliCompress(&mut &body[..], &mut output, &params)?;
            Ok(output)
        }
        Encoding::Zstd => zstd::bulk::compress(body, zstd_level(level)),
    }
}

/// zstd levels are `i32`; ours are clamped to 1..=19 by `Encoding::level`.
fn zstd_level(level: u32) -> i32 {
    i32::try_from(level).unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL)
}

/// brotli's parameters are `i32`; ours are at most 24 (the largest window).
fn brotli_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[cfg(test)]
#[path = "encoder_tests.rs"]
mod tests;
