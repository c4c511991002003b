//! Tests for `encoder`: every codec round-trips through its crate's own decoder, and a
//! streamed body is decodable after every chunk (the per-chunk flush).

use std::io::{Read, Write};

use super::*;

/// Text that compresses, with enough variety to produce several blocks.
fn sample_text(lines: usize) -> Vec<u8> {
    (0..lines)
        .map(|line| {
            format!(
                "<li class=\"row\">item {line}: {}</li>\n",
                line * 7919 % 1000
            )
        })
        .collect::<String>()
        .into_bytes()
}

/// Bytes that do not compress (xorshift), to push the codecs past their buffers.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Decodes a complete stream with the crate's reader, which checks the end of stream
/// (gzip's CRC and length, brotli's last metablock, zstd's frame end).
fn decode_complete(encoding: Encoding, encoded: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::new();
    match encoding {
        Encoding::Gzip => {
            flate2::read::GzDecoder::new(encoded)
                .read_to_end(&mut decoded)
                .expect("gzip decodes");
        }
        Encoding::Brotli => {
            brotli::Decompressor::new(encoded, 4096)
                .read_to_end(&mut decoded)
                .expect("brotli decodes");
        }
        Encoding::Zstd => decoded = zstd::decode_all(encoded).expect("zstd decodes"),
    }
    decoded
}

/// Output buffer of the brotli prefix decoder: larger than any body these tests stream.
const PREFIX_DECODER_BYTES: usize = 1 << 20;

/// Decodes a stream that may not be finished: all a client can make of what it has
/// received so far.
fn decode_so_far(encoding: Encoding, encoded: &[u8]) -> Vec<u8> {
    fn through(mut decoder: impl Write, encoded: &[u8]) {
        decoder.write_all(encoded).expect("prefix decodes");
        decoder.flush().expect("decoder flushes");
    }
    match encoding {
        Encoding::Gzip => {
            let mut decoder = flate2::write::GzDecoder::new(Vec::new());
            through(&mut decoder, encoded);
            decoder.get_ref().clone()
        }
        Encoding::Brotli => {
            // The brotli crate's writer stops at one output buffer once its input runs out
            // (the rest waits for the next write), so give it room for a whole test body;
            // C brotli, as in browsers, pushes out everything it has.
            let mut decoder = brotli::DecompressorWriter::new(Vec::new(), PREFIX_DECODER_BYTES);
            through(&mut decoder, encoded);
            decoder.get_ref().clone()
        }
        Encoding::Zstd => {
            let mut decoder = zstd::stream::write::Decoder::new(Vec::new()).expect("zstd context");
            through(&mut decoder, encoded);
            decoder.get_ref().clone()
        }
    }
}

fn stream(encoding: Encoding, level: Option<u32>, chunks: &[&[u8]]) -> Vec<u8> {
    let mut encoder = Encoder::new(encoding, level).expect("encoder");
    let mut encoded = Vec::new();
    for chunk in chunks {
        encoded.extend(encoder.compress_chunk(chunk).expect("chunk compresses"));
    }
    encoded.extend(encoder.finish().expect("stream finishes"));
    encoded
}

#[test]
fn compress_all_round_trips_for_every_encoding() {
    let body = sample_text(2000);
    for encoding in Encoding::ALL {
        let encoded = compress_all(encoding, None, &body).expect("compresses");
        assert!(encoded.len() < body.len() / 3, "{encoding:?} shrinks text");
        assert_eq!(decode_complete(encoding, &encoded), body, "{encoding:?}");
    }
}

#[test]
fn compress_all_round_trips_an_empty_body_and_incompressible_bytes() {
    let noisy = noise(300_000);
    for encoding in Encoding::ALL {
        for body in [&[][..], &noisy[..]] {
            let encoded = compress_all(encoding, None, body).expect("compresses");
            assert_eq!(decode_complete(encoding, &encoded), body, "{encoding:?}");
        }
    }
}

#[test]
fn every_level_from_lowest_to_highest_round_trips() {
    let body = sample_text(300);
    for encoding in Encoding::ALL {
        for level in [
            Some(0),
            Some(1),
            None,
            Some(9),
            Some(11),
            Some(19),
            Some(u32::MAX),
        ] {
            let encoded = compress_all(encoding, level, &body).expect("compresses");
            assert_eq!(
                decode_complete(encoding, &encoded),
                body,
                "{encoding:?} {level:?}"
            );
            let streamed = stream(encoding, level, &[&body]);
            assert_eq!(
                decode_complete(encoding, &streamed),
                body,
                "{encoding:?} {level:?}"
            );
        }
    }
}

#[test]
fn a_streamed_body_round_trips_for_every_encoding() {
    let text = sample_text(500);
    let noisy = noise(200_000);
    let chunks: Vec<&[u8]> = vec![b"<html>", &text, &noisy, b"", &text[..10], b"</html>"];
    let whole = chunks.concat();
    for encoding in Encoding::ALL {
        let encoded = stream(encoding, None, &chunks);
        assert_eq!(decode_complete(encoding, &encoded), whole, "{encoding:?}");
    }
}

#[test]
fn each_streamed_chunk_is_decodable_as_soon_as_it_is_compressed() {
    let text = sample_text(200);
    let chunks: Vec<&[u8]> = vec![b"data: 1\n\n", b"data: 2\n\n", &text, b"x", &text[..333]];
    for encoding in Encoding::ALL {
        let mut encoder = Encoder::new(encoding, None).expect("encoder");
        let mut sent = Vec::new();
        for (count, chunk) in chunks.iter().enumerate() {
            sent.extend(encoder.compress_chunk(chunk).expect("chunk compresses"));
            let decoded = decode_so_far(encoding, &sent);
            let expected = chunks[..=count].concat();
            // Lengths first: a failure then says how much is missing, not 10k bytes.
            assert_eq!(
                decoded.len(),
                expected.len(),
                "{encoding:?} after chunk {count}"
            );
            assert!(decoded == expected, "{encoding:?} after chunk {count}");
        }
        sent.extend(encoder.finish().expect("stream finishes"));
        assert_eq!(
            decode_complete(encoding, &sent),
            chunks.concat(),
            "{encoding:?}"
        );
    }
}

#[test]
fn an_empty_chunk_produces_no_bytes() {
    for encoding in Encoding::ALL {
        let mut encoder = Encoder::new(encoding, None).expect("encoder");
        assert!(encoder.compress_chunk(b"").expect("compresses").is_empty());
        assert!(!encoder.compress_chunk(b"a").expect("compresses").is_empty());
        assert!(encoder.compress_chunk(b"").expect("compresses").is_empty());
    }
}

#[test]
fn a_stream_with_no_chunks_finishes_as_a_valid_empty_body() {
    for encoding in Encoding::ALL {
        let encoded = stream(encoding, None, &[]);
        assert!(
            !encoded.is_empty(),
            "{encoding:?} still writes a header/trailer"
        );
        assert!(
            decode_complete(encoding, &encoded).is_empty(),
            "{encoding:?}"
        );
    }
}

#[test]
fn an_encoder_reports_its_encoding() {
    for encoding in Encoding::ALL {
        let encoder = Encoder::new(encoding, None).expect("encoder");
        assert_eq!(encoder.encoding(), encoding);
    }
}
