"""Strict chunked request framing (RFC 9112 §7.1): whitespace after the chunk size, bare LF,
over-long sizes, chunk extensions over 4096 bytes in all, forbidden trailer fields, and a last
chunk without its final CRLF. When the bad part arrives in the same send as the head the
request is refused (400, one warning line, connection closed) and the app is never called
(apps/call_log.py); trailers are read and discarded, never put in the environ
(apps/target_environ.py)."""

from __future__ import annotations

import json
import time

import pytest

from tests.http.refusals import assert_refused, assert_served, calls, recorded_server

pytestmark = pytest.mark.timeout(20)

#: Most bytes of chunk extensions one request may carry.
MAX_EXTENSION_BYTES = 4096
HEAD = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.fixture(scope="module")
def server(serve):
    with recorded_server(serve) as s:
        yield s


@pytest.fixture(scope="module")
def environ_server(serve):
    with serve("target_environ:app") as s:
        yield s


def post_chunked(body: bytes, head: bytes = HEAD) -> bytes:
    """A chunked POST /echo with ``body`` as sent (framing included)."""
    return head + body


def with_extensions(*lengths: int) -> bytes:
    """A chunked body of one 1-byte chunk per length in ``lengths``, each carrying a chunk
    extension ``;e=vvv`` of exactly that many bytes (the ';' included)."""
    out = b""
    for i, length in enumerate(lengths):
        ext = b";e=" + b"v" * (length - 3)
        assert len(ext) == length
        out += b"1" + ext + b"\r\n" + bytes([0x61 + i % 26]) + b"\r\n"
    return out + b"0\r\n\r\n"


BAD_FRAMING = [
    # Whitespace between the size and CRLF without an extension (RFC 9112 §7.1: no BWS).
    pytest.param(b"5 \r\nhello\r\n0\r\n\r\n", id="space-after-size"),
    pytest.param(b"5\t\r\nhello\r\n0\r\n\r\n", id="tab-after-size"),
    pytest.param(b"5  \r\nhello\r\n0\r\n\r\n", id="two-spaces-after-size"),
    pytest.param(b"5\r\nhello\r\n0 \r\n\r\n", id="space-after-last-chunk-size"),
    # A bare LF anywhere in the framing (RFC 9112 §2.2 allows it as a line end; we do not).
    pytest.param(b"5\nhello\r\n0\r\n\r\n", id="bare-lf-after-size"),
    pytest.param(b"5\r\nhello\n0\r\n\r\n", id="bare-lf-after-data"),
    pytest.param(b"5\r\nhello\r\n0\n\r\n", id="bare-lf-after-last-chunk"),
    pytest.param(b"5\r\nhello\r\n0\r\n\n", id="bare-lf-final-line"),
    pytest.param(b"5;a=b\nhello\r\n0\r\n\r\n", id="bare-lf-after-extension"),
    pytest.param(b"5\r\nhello\r\n0\r\nX-T: a\n\r\n", id="bare-lf-after-trailer"),
    # Chunk sizes: more than 16 hex digits, or not hex at all.
    pytest.param(b"00000000000000005\r\nhello\r\n0\r\n\r\n", id="17-hex-digits"),
    pytest.param(b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", id="21-hex-digits"),
    pytest.param(b"0x5\r\nhello\r\n0\r\n\r\n", id="0x-prefix"),
    pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative-size"),
    pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="empty-size"),
    pytest.param(b"5\r\nhelloXX0\r\n\r\n", id="data-not-followed-by-crlf"),
    # Chunk extensions over 4096 bytes: in one chunk, and in total over several.
    pytest.param(with_extensions(MAX_EXTENSION_BYTES + 100), id="one-extension-over-4096"),
    pytest.param(with_extensions(2055, 2055), id="two-extensions-totalling-over-4096"),
    pytest.param(with_extensions(*[1100] * 4), id="four-extensions-totalling-over-4096"),
    # The last chunk without its final CRLF, and another request right after it.
    pytest.param(
        b"5\r\nhello\r\n0\r\nGET /n/smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        id="last-chunk-without-crlf-then-request",
    ),
]


@pytest.mark.parametrize("body", BAD_FRAMING)
def test_bad_chunked_framing_is_400_without_calling_the_app(server, body):
    assert_refused(server, post_chunked(body), (400,), method="POST")


GOOD_FRAMING = [
    pytest.param(b"5 ;ext=1\r\nhello\r\n0\r\n\r\n", id="space-before-extension"),
    pytest.param(b"5;ext=1\r\nhello\r\n0;last\r\n\r\n", id="extensions"),
    pytest.param(b'5;a="q s"\r\nhello\r\n0\r\n\r\n', id="quoted-extension"),
    pytest.param(b"0000000000000005\r\nhello\r\n0\r\n\r\n", id="16-hex-digits"),
    pytest.param(b"2\r\nhe\r\n3\r\nllo\r\n0\r\nX-Trailer: yes\r\n\r\n", id="allowed-trailer"),
    pytest.param(b"5\r\nhello\r\n0000\r\n\r\n", id="zero-padded-last-chunk"),
]


@pytest.mark.parametrize("body", GOOD_FRAMING)
def test_valid_chunked_framing_is_served(server, body):
    resp = assert_served(server, post_chunked(body), method="POST")
    assert resp.body == b"hello"


def test_upper_and_lower_case_hex_sizes_are_served(server):
    data = b"0123456789"
    body = b"A\r\n" + data + b"\r\na\r\n" + data + b"\r\n0\r\n\r\n"
    resp = assert_served(server, post_chunked(body), method="POST")
    assert resp.body == data * 2


def test_chunk_extensions_just_under_4096_bytes_in_all_are_served(server):
    lengths = [1020, 1020, 1020, 1020]  # 4080 bytes of extensions, ';' included
    resp = assert_served(server, post_chunked(with_extensions(*lengths)), method="POST")
    assert resp.body == b"abcd"


FORBIDDEN_TRAILERS = [
    "Content-Length",
    "Transfer-Encoding",
    "Host",
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
    "Content-Type",
    "Content-Encoding",
    "Content-Range",
    "Trailer",
    "TE",
    "Connection",
    "Expect",
    "Range",
    "Cache-Control",
    "Max-Forwards",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "If-Range",
    "If-Anything-Else",
    "content-length",
    "HOST",
]


@pytest.mark.parametrize("name", FORBIDDEN_TRAILERS)
def test_forbidden_trailer_field_is_400(server, name):
    body = b"5\r\nhello\r\n0\r\n" + name.encode() + b": 1\r\n\r\n"
    assert_refused(server, post_chunked(body), (400,), method="POST")


def test_trailers_are_discarded_not_put_in_the_environ(environ_server):
    head = HEAD[:-2] + b"Trailer: X-Trailer, X-Other\r\n\r\n"
    body = b"5\r\nhello\r\n0\r\nX-Trailer: yes\r\nX-Other: also\r\n\r\n"
    with environ_server.connect(timeout=5) as conn:
        conn.send(post_chunked(body, head=head) + b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = conn.read_response(), conn.read_response()
    env = json.loads(first.body)
    assert first.status == 200 and env["body"] == "hello", env
    assert "HTTP_X_TRAILER" not in env["http_keys"] and "HTTP_X_OTHER" not in env["http_keys"]
    # The connection stays in sync: the pipelined request after the trailers is answered.
    assert second.status == 200 and json.loads(second.body)["PATH_INFO"] == "/after"


def test_last_chunk_without_crlf_never_answers_the_request_after_it(server):
    before = len(calls(server))
    body = b"5\r\nhello\r\n0\r\nGET /n/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    with server.connect(timeout=5) as conn:
        conn.send(post_chunked(body))
        resp = conn.read_response(method="POST")
        assert resp.status == 400, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"more after the 400: {conn.buffer!r}"
    assert calls(server)[before:] == []


def test_bad_framing_arriving_after_the_app_started_gets_400_and_a_close(server):
    # The first chunk goes with the head, so the app starts reading; the bad chunk comes later.
    # The app's read raises OSError; no response head went out, so the client gets 400.
    before = len(calls(server))
    with server.connect(timeout=5) as conn:
        conn.send(post_chunked(b"5\r\nhello\r\n"))
        time.sleep(0.3)
        conn.send(b"5 \r\nworld\r\n0\r\n\r\n")
        resp = conn.read_response(method="POST")
        assert resp.status == 400, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert calls(server)[before:] == ["POST /echo"]
    assert server.get("/n/alive").body == b"alive"


def test_bare_lf_arriving_after_the_app_started_gets_400_and_a_close(server):
    with server.connect(timeout=5) as conn:
        conn.send(post_chunked(b"5\r\nhello\r\n"))
        time.sleep(0.3)
        conn.send(b"5\r\nworld\n0\r\n\r\n")
        resp = conn.read_response(method="POST")
        assert resp.status == 400, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert server.get("/n/alive").body == b"alive"
