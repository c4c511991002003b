"""Malformed requests on the wire: each gets one clear 4xx, a closed connection and one warning
line, nothing panics, and the next connection is served normally (apps/basic.py)."""

from __future__ import annotations

import socket

import pytest

from tests.rawhttp import IncompleteResponse, build_request

pytestmark = pytest.mark.timeout(20)

#: The warning logged once per rejected request; the reason after the peer may change.
REJECTED = "Rejected a malformed request from 127.0.0.1"
#: The largest request head the server takes, in bytes (request line through the blank line).
MAX_HEAD_BYTES = 64 * 1024
#: The most header lines a request may have.
MAX_HEADER_LINES = 100
#: A complete request hidden inside another request's body by the smuggling cases.
SMUGGLED = b"GET /n/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(serve):
    with serve("basic:app") as s:
        yield s


def get_with(*lines: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    """A GET / request head with Host and the given extra header ``lines``."""
    head = b"GET / " + version + b"\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines)
    return head + b"\r\n"


def post_with(*lines: bytes, body: bytes = b"") -> bytes:
    """A POST /echo request with Host, the given header ``lines`` and ``body`` as sent."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines)
    return head + b"\r\n" + body


def head_of_size(size: int) -> bytes:
    """A GET request head of exactly ``size`` bytes, made long by one header."""
    padding = size - len(get_with(b"X-Big: "))
    return get_with(b"X-Big: " + b"a" * padding)


def many_headers(count: int) -> bytes:
    """A GET request head with ``count`` header lines, Host included."""
    return get_with(*(b"X-H%d: v" % i for i in range(count - 1)))


def cl_and_chunked_with_smuggled_request() -> bytes:
    """POST whose chunked body ends at once, leaving SMUGGLED inside its Content-Length."""
    body = b"0\r\n\r\n" + SMUGGLED
    length = b"Content-Length: %d" % len(body)
    return post_with(length, b"Transfer-Encoding: chunked", body=body)


def assert_still_serving(server) -> None:
    """Nothing panicked and a fresh connection is served normally."""
    assert "panick" not in server.log().lower(), server.log()
    resp = server.get("/n/alive")
    assert (resp.status, resp.body) == (200, b"alive")


def assert_rejected(server, raw: bytes, statuses: tuple[int, ...]) -> None:
    """``raw`` gets one response with a status in ``statuses``, then the connection closes,
    one warning line is logged, and the server keeps serving."""
    mark = server.log_mark()
    with server.connect(timeout=5) as conn:
        conn.send(raw)
        resp = conn.read_response()
        assert resp.status in statuses, (resp.status, resp.reason, resp.body)
        # Also fails if anything follows the rejection, such as an answer to a smuggled request.
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    server.wait_for_log(REJECTED, since=mark, timeout=5)
    logged = server.log_since(mark)
    assert logged.count(REJECTED) == 1 and "Traceback" not in logged, logged
    assert_still_serving(server)


MALFORMED = [
    # RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
    pytest.param(b"HELLO\r\n\r\n", (400,), id="garbage-request-line"),
    pytest.param(b"GET /\r\n\r\n", (400,), id="request-line-without-version"),
    # RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.
    pytest.param(get_with(b"NoColonHere"), (400,), id="header-without-colon"),
    # RFC 9112 §5.1: whitespace between field name and colon MUST be rejected with 400.
    pytest.param(b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", (400,), id="space-before-colon"),
    # RFC 9112 §5.2: obs-fold in a request: reject with 400 (or replace with SP; we reject).
    pytest.param(get_with(b"X-A: one", b" two"), (400,), id="obs-fold"),
    # RFC 9110 §5.5: NUL, CR and LF in a field value are invalid; other CTLs too.
    pytest.param(get_with(b"X-A: a\x00b"), (400,), id="nul-in-value"),
    pytest.param(get_with(b"X-A: a\x01b"), (400,), id="ctl-0x01-in-value"),
    # RFC 9112 §2.2: a bare CR MUST be treated as invalid (or replaced with SP).
    pytest.param(get_with(b"X-A: a\rb"), (400,), id="bare-cr-in-value"),
    # RFC 9112 §6.3 rule 5: an invalid Content-Length MUST get 400, then the connection closes.
    pytest.param(post_with(b"Content-Length: 12abc"), (400,), id="cl-12abc"),
    pytest.param(post_with(b"Content-Length: -1"), (400,), id="cl-negative"),
    pytest.param(post_with(b"Content-Length: +5", body=b"hello"), (400,), id="cl-plus-sign"),
    # RFC 9112 §6.3 rule 5 with RFC 9110 §8.6: differing Content-Length values are invalid.
    pytest.param(
        post_with(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!"),
        (400,),
        id="cl-two-headers",
    ),
    pytest.param(post_with(b"Content-Length: 5, 6", body=b"hello!"), (400,), id="cl-list"),
    # RFC 9112 §6.3 rule 4: chunked not final MUST be 400; §6.1: unknown coding SHOULD be 501.
    pytest.param(post_with(b"Transfer-Encoding: gzip"), (400, 501), id="te-gzip"),
    pytest.param(
        post_with(b"Transfer-Encoding: chunked, gzip", body=b"0\r\n\r\n"),
        (400, 501),
        id="te-chunked-then-gzip",
    ),
    # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 MUST be treated as faulty framing and the
    # connection closed; rejecting outright means the smuggled request is never read.
    pytest.param(
        b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"0\r\n\r\n"
        + SMUGGLED,
        (400,),
        id="te-in-http10",
    ),
    # RFC 6585 §5: 431 when the head is too large; one byte past the 64 KiB limit.
    pytest.param(head_of_size(MAX_HEAD_BYTES + 1), (431,), id="head-over-64KiB"),
    # RFC 6585 §5: 101 header lines; the reference answers 431 (not 400).
    pytest.param(many_headers(MAX_HEADER_LINES + 1), (431,), id="over-100-header-lines"),
    # RFC 9110 §15.6.6: 505 for an unsupported major version; 400 is accepted too.
    pytest.param(get_with(version=b"HTTP/2.0"), (400, 505), id="http-2.0"),
]


@pytest.mark.parametrize(("raw", "statuses"), MALFORMED)
def test_malformed_request_is_rejected_logged_and_closed(server, raw, statuses):
    assert_rejected(server, raw, statuses)


@pytest.mark.parametrize(
    "raw",
    [head_of_size(MAX_HEAD_BYTES), many_headers(MAX_HEADER_LINES)],
    ids=["head-of-64KiB", "100-header-lines"],
)
def test_request_head_at_the_limit_is_served(server, raw):
    with server.connect(timeout=5) as conn:
        conn.send(raw)
        resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b"Hello, world!")


def test_higher_minor_version_is_served_as_http11(server):
    # RFC 9110 §2.5: a recipient SHOULD process a higher minor version as the highest minor
    # version it implements, and answers in that version.
    with server.connect(timeout=5) as conn:
        conn.send(get_with(version=b"HTTP/1.2"))
        resp = conn.read_response()
    assert (resp.version, resp.status, resp.body) == ("HTTP/1.1", 200, b"Hello, world!")
    # Pipelined behind it, a plain 1.1 request on the same connection is answered too.
    with server.connect(timeout=5) as conn:
        conn.send(get_with(version=b"HTTP/1.9") + get_with())
        first, second = conn.read_response(), conn.read_response()
    assert first.version == second.version == "HTTP/1.1"
    assert first.body == second.body == b"Hello, world!"


def test_content_length_with_chunked_never_answers_the_smuggled_request(server):
    # RFC 9112 §6.3 rule 3: with both headers the server MUST close the connection after
    # responding, so the request hidden in the body never gets an answer of its own.
    assert server.get("/n/smuggled").body == b"smuggled"  # the route answers when asked openly
    with server.connect(timeout=5) as conn:
        conn.send(cl_and_chunked_with_smuggled_request())
        first = conn.read_response(method="POST")
        assert first.body != b"smuggled", "the smuggled request was answered"
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert_still_serving(server)


def test_content_length_with_chunked_is_400(server):
    # RFC 9112 §6.3 rule 3: a server MAY reject a request with both headers; we do.
    assert_rejected(server, cl_and_chunked_with_smuggled_request(), (400,))


def test_client_closing_mid_head_leaves_the_server_serving(server):
    with server.connect(timeout=5) as conn:
        conn.send(b"GET /n/half HTTP/1.1\r\nHost: x\r\nX-Cut")
        conn.sock.shutdown(socket.SHUT_WR)
        conn.read_until_close()  # fails on timeout: the server must let the connection go
    assert_still_serving(server)


def test_chunk_size_overflowing_64_bits_fails_fast(server):
    # RFC 9112 §7.1: chunk-size = 1*HEXDIG; a size past 2**64 is an error, never a wrap-around.
    body = b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"
    with server.connect(timeout=5) as conn:
        conn.send(build_request("POST", "/echo", body, {"Transfer-Encoding": "chunked"}))
        try:
            resp = conn.read_response(method="POST")
        except IncompleteResponse as exc:
            # Closed without an answer is fine; hanging until the timeout is not.
            assert not exc.partial and "timed out" not in str(exc), exc
        except ConnectionResetError:
            pass
        else:
            assert resp.status == 500 or 400 <= resp.status < 500, (resp.status, resp.body)
            assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert_still_serving(server)
