"""ferrogate.middleware.Compress, lifted under ferrogate, as Python under ferrogate, and under
wsgiref: negotiated coding,
what is never compressed, headers rewritten, and a streamed body that reaches the client
chunk by chunk (each decodable as it arrives)."""

from __future__ import annotations

import gzip
import http.client
import sys
import threading
import time
import zlib
from wsgiref.simple_server import make_server
from wsgiref.validate import validator

import brotli
import pytest
import zstandard

from tests import serving
from tests.middleware.conftest import QuietHandler

sys.path.insert(0, str(serving.APPS_DIR))
from compress_stack import DOC  # noqa: E402 (the app module the servers load)

DECODERS = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.fixture(scope="module", params=["lifted", "python", "wsgiref"])
def compress_server(request):
    if request.param in ("lifted", "python"):
        flags = ["--no-native-middleware"] if request.param == "python" else []
        with serving.serve("compress_stack:app", *flags) as server:
            yield server.host, server.port
        return
    import compress_stack

    httpd = make_server("127.0.0.1", 0, validator(compress_stack.app), handler_class=QuietHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield "127.0.0.1", httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def get(address, path: str, accept: str | None):
    conn = http.client.HTTPConnection(*address, timeout=10)
    conn.putrequest("GET", path, skip_accept_encoding=True)
    if accept is not None:
        conn.putheader("Accept-Encoding", accept)
    conn.endheaders()
    resp = conn.getresponse()
    return resp, resp.read()


@pytest.mark.parametrize(
    ("accept", "coding"),
    [("gzip", "gzip"), ("br", "br"), ("zstd", "zstd"), ("gzip, br", "br"),
     ("gzip;q=1, br;q=0.5", "gzip"), ("*", "br"), ("br;q=0, gzip", "gzip")],
)
def test_the_coding_follows_accept_encoding_and_the_body_decodes(compress_server, accept, coding):
    resp, body = get(compress_server, "/json", accept)
    assert resp.status == 200
    assert resp.getheader("Content-Encoding") == coding
    assert resp.getheader("Vary") == "Accept-Encoding"
    assert resp.getheader("ETag") == 'W/"v1"', "a strong ETag is weakened"
    assert resp.getheader("Content-Length") in (None, str(len(body)))
    assert DECODERS[coding](body) == DOC
    assert len(body) < len(DOC) / 3


@pytest.mark.parametrize("accept", [None, "identity", "deflate", "gzip;q=0"])
def test_no_acceptable_coding_sends_the_body_as_is_but_says_vary(compress_server, accept):
    resp, body = get(compress_server, "/json", accept)
    assert resp.getheader("Content-Encoding") is None
    assert resp.getheader("Vary") == "Accept-Encoding"
    assert body == DOC


@pytest.mark.parametrize("path", ["/png", "/encoded", "/small", "/no-transform"])
def test_what_is_never_compressed(compress_server, path):
    resp, body = get(compress_server, path, "gzip, br")
    assert resp.getheader("Content-Encoding") in (None, "gzip" if path == "/encoded" else None)
    assert resp.getheader("Content-Length") == str(len(body))


def test_write_calls_are_compressed_too(compress_server):
    resp, body = get(compress_server, "/write", "gzip")
    assert resp.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == b"<p>" + b"w" * 3000 + b"</p><p>end</p>"


def test_a_stream_reaches_the_client_chunk_by_chunk(compress_server):
    conn = http.client.HTTPConnection(*compress_server, timeout=10)
    conn.putrequest("GET", "/stream", skip_accept_encoding=True)
    conn.putheader("Accept-Encoding", "gzip")
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.getheader("Content-Encoding") == "gzip"
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    seen = b""
    first_line_at = None
    started = time.monotonic()
    while b"line 0" not in seen:
        piece = resp.read1(65536)
        assert piece, "the stream ended before its first line decoded"
        seen += decoder.decompress(piece)
    first_line_at = time.monotonic() - started
    rest = resp.read()
    seen += decoder.decompress(rest) + decoder.flush()
    # The app sleeps 0.2 s after each of 5 lines: the first decodes long before the end.
    assert first_line_at < 0.5, f"first line after {first_line_at:.2f} s: not flushed"
    assert seen.count(b"\n") == 5


def test_a_body_shorter_than_its_content_length_is_never_a_clean_response(compress_server):
    conn = http.client.HTTPConnection(*compress_server, timeout=10)
    conn.putrequest("GET", "/short", skip_accept_encoding=True)
    conn.putheader("Accept-Encoding", "gzip")
    conn.endheaders()
    resp = conn.getresponse()
    try:
        body = resp.read()
    except (http.client.IncompleteRead, ConnectionError):
        return  # the connection was cut: the client can tell the response is broken
    if resp.getheader("Content-Encoding") == "gzip":
        # A close-delimited body (wsgiref's HTTP/1.0): the gzip stream lacks its end.
        with pytest.raises(EOFError):
            gzip.decompress(body)
    else:
        # Sent as it is: its Content-Length tells the client it is short.
        assert resp.getheader("Content-Encoding") is None and len(body) < 4096
