use super::*;

fn decode_all(decoder: &mut BodyDecoder, pieces: &[&[u8]]) -> Result<Vec<u8>, BodyReadError> {
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut pieces = pieces.iter();
    loop {
        match decoder.decode(&mut buf)? {
            Decoded::Data(data) => body.extend_from_slice(&data),
            Decoded::End => return Ok(body),
            Decoded::NeedMore => match pieces.next() {
                Some(piece) => buf.extend_from_slice(piece),
                None => return Err(BodyReadError::Incomplete),
            },
        }
    }
}

fn chunked(pieces: &[&[u8]]) -> Result<Vec<u8>, BodyReadError> {
    decode_all(&mut BodyDecoder::new(BodyFraming::Chunked, None), pieces)
}

#[test]
fn chunked_body_is_decoded_across_any_split() {
    let wire = b"5;ext=1\r\nhello\r\n6 ;a\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    for split in 0..wire.len() {
        let (a, b) = wire.split_at(split);
        assert_eq!(
            chunked(&[a, b]).unwrap(),
            b"hello world",
            "split at {split}"
        );
    }
}

#[test]
fn broken_chunked_bodies_are_errors() {
    for wire in [
        &b"zz\r\n"[..],
        b"\r\n",
        b"fffffffffffffffff\r\n",
        b"5\r\nhelloX",
        b"5\nhello\r\n",
        b"5\r\nhello\n0\r\n\r\n",
        b"0\n\r\n",
        b"0\r\n\n",
        b"0\r\nX: a\n\r\n",
        b"0\r\nbad\x01trailer\r\n\r\n",
        b"0\r\nbad trailer\r\n\r\n",
        b"0\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        assert!(
            matches!(chunked(&[wire]), Err(BodyReadError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn chunk_size_followed_by_whitespace_is_400() {
    assert_eq!(
        chunked(&[b"5 \r\nhello\r\n0\r\n\r\n"]),
        Err(BodyReadError::Malformed(
            "chunk size followed by whitespace (RFC 9112 §7.1)"
        ))
    );
    assert_eq!(
        chunked(&[b"5 \t ;x\r\nhello\r\n0\r\n\r\n"]).unwrap(),
        b"hello"
    );
}

#[test]
fn chunk_extensions_are_bounded_per_request() {
    let chunk = |extension: usize| format!("1;{}\r\na\r\n", "e".repeat(extension - 1));
    let within = format!("{}{}0\r\n\r\n", chunk(2048), chunk(2048));
    assert_eq!(chunked(&[within.as_bytes()]).unwrap(), b"aa");
    let over = format!("{}{}0\r\n\r\n", chunk(2048), chunk(2049));
    assert!(chunked(&[over.as_bytes()]).is_err());
}

#[test]
fn framing_and_routing_trailers_are_refused() {
    for name in [
        "Content-Length",
        "transfer-encoding",
        "HOST",
        "Authorization",
        "If-Match",
    ] {
        let wire = format!("1\r\na\r\n0\r\n{name}: x\r\n\r\n");
        assert!(chunked(&[wire.as_bytes()]).is_err(), "{name}");
    }
    let fine = b"1\r\na\r\n0\r\nX-Checksum: abc\r\nHostname: y\r\n\r\n";
    assert_eq!(chunked(&[fine]).unwrap(), b"a");
}

#[test]
fn chunked_bodies_are_held_to_the_limit() {
    let wire = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    let mut at = BodyDecoder::new(BodyFraming::Chunked, Some(10));
    assert_eq!(decode_all(&mut at, &[wire]).unwrap(), b"helloworld");
    let mut over = BodyDecoder::new(BodyFraming::Chunked, Some(9));
    assert_eq!(
        decode_all(&mut over, &[wire]),
        Err(BodyReadError::TooLarge { limit: 9 })
    );
}

#[test]
fn length_body_stops_at_its_length() {
    let mut decoder = BodyDecoder::new(BodyFraming::Length(3), None);
    let mut buf = BytesMut::from(&b"abcGET"[..]);
    assert!(matches!(decoder.decode(&mut buf), Ok(Decoded::Data(d)) if d == "abc"));
    assert!(matches!(decoder.decode(&mut buf), Ok(Decoded::End)));
    assert_eq!(&buf[..], b"GET");
}
