"""Malformed requests on the wire: each gets one clear 4xx/5xx, a closed connection and one
warning line ``[WARNING] <status> from 127.0.0.1:<port>: <reason>``, the app is never called,
nothing panics, and the next connection is served normally (apps/call_log.py: basic.py that
records its calls). Strict parsing of the method, the request target, header fields and the
version, as in RFC 9112/9110 and gunicorn's defaults."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.http.refusals import (
    REFUSAL_SPACING_S,
    REJECTED,
    assert_refused,
    assert_served,
    assert_still_serving,
    calls,
    recorded_server,
)
from tests.rawhttp import IncompleteResponse, build_request

pytestmark = pytest.mark.timeout(20)

#: The largest request head the server takes, in bytes (request line through the blank line).
MAX_HEAD_BYTES = 64 * 1024
#: The most header lines a request may have.
MAX_HEADER_LINES = 100
#: Each padding header line stays under the default --limit-request-field-size (8190).
PADDING_LINE_BYTES = 8000
#: A complete request hidden inside another request's body by the smuggling cases.
SMUGGLED = b"GET /n/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def server(serve):
    with recorded_server(serve) as s:
        yield s


@pytest.fixture(scope="module")
def permissive(serve):
    with recorded_server(serve, "--permit-unconventional-methods") as s:
        yield s


@pytest.fixture(scope="module")
def environ_server(serve):
    with serve("target_environ:app") as s:
        yield s


def get_with(*lines: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    """A GET / request head with Host and the given extra header ``lines``."""
    head = b"GET / " + version + b"\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines)
    return head + b"\r\n"


def post_with(*lines: bytes, body: bytes = b"") -> bytes:
    """A POST /echo request with Host, the given header ``lines`` and ``body`` as sent."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines)
    return head + b"\r\n" + body


def request_line(line: bytes, *headers: bytes) -> bytes:
    """A request with the request line ``line`` as given, Host and ``headers``."""
    return line + b"\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def head_of_size(size: int) -> bytes:
    """A GET request head of exactly ``size`` bytes, made long by padding headers that each
    stay under the default field-size limit (so only the head cap applies)."""
    remaining = size - len(get_with())
    count = -(-remaining // PADDING_LINE_BYTES)
    lines = []
    for i in range(count):
        line_bytes = remaining // count + (1 if i < remaining % count else 0)
        prefix = b"X-Big-%d: " % i
        lines.append(prefix + b"a" * (line_bytes - len(prefix) - 2))
    head = get_with(*lines)
    assert len(head) == size
    return head


def many_headers(count: int) -> bytes:
    """A GET request head with ``count`` header lines, Host included."""
    return get_with(*(b"X-H%d: v" % i for i in range(count - 1)))


def cl_and_chunked_with_smuggled_request() -> bytes:
    """POST whose chunked body ends at once, leaving SMUGGLED inside its Content-Length."""
    body = b"0\r\n\r\n" + SMUGGLED
    length = b"Content-Length: %d" % len(body)
    return post_with(length, b"Transfer-Encoding: chunked", body=body)


def assert_rejected(server, raw: bytes, statuses: tuple[int, ...]) -> None:
    """``raw`` gets one response with a status in ``statuses``, then the connection closes,
    the app is not called, one warning line is logged, and the server keeps serving."""
    assert_refused(server, raw, statuses)


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
    # RFC 9110 §15.6.6: 505 for a version other than 1.x.
    pytest.param(get_with(version=b"HTTP/2.0"), (505,), id="http-2.0"),
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


def test_refusal_line_is_one_warning_naming_status_peer_and_reason(server):
    time.sleep(REFUSAL_SPACING_S)  # the log lines are rate-limited
    mark = server.log_mark()
    with server.connect(timeout=5) as conn:
        port = conn.local_port
        conn.send(b"get / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert conn.read_response().status == 400
    (match,) = server.wait_for_log(REJECTED, since=mark, timeout=5)
    line = server.log_since(mark).splitlines()[0]
    assert match.group(1) == "400" and match.group(2) == str(port), line
    # The common log prefix: [date] [pid] [WARNING] ...
    assert line.startswith("[") and "] [WARNING] 400 from 127.0.0.1:" in line, line
    assert_still_serving(server)


# -- the method ------------------------------------------------------------------------------

#: Refused by default: 3..20 characters of A-Z 0-9 '-' '_' only (gunicorn's rule).
DEFAULT_BAD_METHODS = [b"get", b"Get", b"GE", b"A" * 21, b"GE.T", b"GE(T", b"M.SEARCH", b"X"]
#: Accepted by default, and passed to the app as-is.
DEFAULT_GOOD_METHODS = [b"GET", b"PUT", b"M-SEARCH", b"X_Y", b"123", b"A" * 20, b"PROPFIND"]
#: With --permit-unconventional-methods: any RFC 9110 token, as-is.
PERMITTED_METHODS = [b"get", b"Get", b"M.SEARCH", b"X", b"GE", b"A" * 40, b"!#$%&'*+-.^_`|~09aZ"]
#: Not tokens (RFC 9110 §5.6.2 tchar), refused even with --permit-unconventional-methods.
NON_TOKEN_METHODS = [b"GE(T", b'GE"T', b"GE,T", b"GE/T", b"GE:T", b"GE@T", b"GE{T", b"GE\x7fT"]


def _ids(values):
    return [v.decode("latin-1").encode("unicode_escape").decode() for v in values]


@pytest.mark.parametrize("method", DEFAULT_BAD_METHODS, ids=_ids(DEFAULT_BAD_METHODS))
def test_unconventional_method_is_400_by_default(server, method):
    assert_rejected(server, request_line(method + b" /n/m HTTP/1.1"), (400,))


@pytest.mark.parametrize("method", DEFAULT_GOOD_METHODS, ids=_ids(DEFAULT_GOOD_METHODS))
def test_conventional_method_reaches_the_app_as_is(server, method):
    before = len(calls(server))
    resp = assert_served(server, request_line(method + b" /n/m HTTP/1.1"))
    assert resp.body == b"m"
    assert calls(server)[before] == method.decode() + " /n/m"


@pytest.mark.parametrize("method", PERMITTED_METHODS, ids=_ids(PERMITTED_METHODS))
def test_any_token_method_reaches_the_app_as_is_when_permitted(permissive, method):
    before = len(calls(permissive))
    resp = assert_served(permissive, request_line(method + b" /n/m HTTP/1.1"))
    assert resp.body == b"m"
    assert calls(permissive)[before] == method.decode() + " /n/m"


@pytest.mark.parametrize("method", NON_TOKEN_METHODS, ids=_ids(NON_TOKEN_METHODS))
def test_non_token_method_is_400_even_when_permitted(permissive, method):
    assert_rejected(permissive, request_line(method + b" /n/m HTTP/1.1"), (400,))


def test_permissive_server_still_refuses_other_malformed_requests(permissive):
    assert_rejected(permissive, request_line(b"get /a{b HTTP/1.1"), (400,))
    assert_rejected(permissive, b"get / HTTP/1.1\r\n\r\n", (400,))


# -- the request target --------------------------------------------------------------------

#: Target bytes that are never valid (RFC 3986 / RFC 9112 §3.2): CTL, DEL, non-ASCII, and
#: the characters browsers always percent-encode.
BAD_TARGET_BYTES = [bytes([b]) for b in (0x00, 0x01, 0x09, 0x1F, 0x7F, 0x80, 0xE9, 0xFF)] + [
    b'"',
    b"<",
    b">",
    b"\\",
    b"`",
    b"{",
    b"}",
    b"#",
]
#: Characters outside RFC 3986 that browsers send raw: accepted.
RAW_BROWSER_BYTES = [b"|", b"^", b"[", b"]"]

BAD_TARGETS = [
    pytest.param(b"GET * HTTP/1.1", id="asterisk-with-GET"),
    pytest.param(b"POST * HTTP/1.1", id="asterisk-with-POST"),
    pytest.param(b"CONNECT /x HTTP/1.1", id="CONNECT-origin-form"),
    pytest.param(b"GET example.com:443 HTTP/1.1", id="authority-form-with-GET"),
    pytest.param(b"OPTIONS example.com:443 HTTP/1.1", id="authority-form-with-OPTIONS"),
    pytest.param(b"GET n/m HTTP/1.1", id="relative-path"),
    pytest.param(b"GET ?q=1 HTTP/1.1", id="query-only"),
    pytest.param(b"GET example.com/p HTTP/1.1", id="no-scheme"),
    pytest.param(b"GET /n/a?x={1} HTTP/1.1", id="brace-in-query"),
    pytest.param(b"GET /n/a#frag HTTP/1.1", id="fragment"),
    pytest.param(b"GET http://example.com/a{b HTTP/1.1", id="brace-in-absolute-form"),
    pytest.param(b"GET  /n/a HTTP/1.1", id="two-spaces-after-method"),
]


@pytest.mark.parametrize("line", BAD_TARGETS)
def test_bad_request_target_form_is_400(server, line):
    assert_rejected(server, request_line(line), (400,))


def test_two_spaces_before_the_version_is_refused(server):
    # The version is then " HTTP/1.1": not a version at all (400), or an unsupported one (505).
    assert_rejected(server, request_line(b"GET /n/a  HTTP/1.1"), (400, 505))


@pytest.mark.parametrize("byte", BAD_TARGET_BYTES, ids=_ids(BAD_TARGET_BYTES))
def test_bad_byte_in_request_target_is_400(server, byte):
    assert_rejected(server, request_line(b"GET /n/a" + byte + b"b HTTP/1.1"), (400,))


@pytest.mark.parametrize("byte", RAW_BROWSER_BYTES, ids=_ids(RAW_BROWSER_BYTES))
def test_raw_browser_byte_in_request_target_is_served(server, byte):
    resp = assert_served(server, request_line(b"GET /n/a" + byte + b"b?x=" + byte + b" HTTP/1.1"))
    assert resp.body == b"a" + byte + b"b"


def test_asterisk_form_with_options_is_served(server):
    before = len(calls(server))
    resp = assert_served(server, request_line(b"OPTIONS * HTTP/1.1"), status=204)
    assert resp.header("Allow"), resp.headers
    assert calls(server)[before].startswith("OPTIONS "), calls(server)[before:]


def test_connect_with_authority_form_is_501(server):
    assert_rejected(server, request_line(b"CONNECT example.com:443 HTTP/1.1"), (501,))


@pytest.mark.parametrize(
    "raw",
    [
        request_line(b"GET http://example.com:8080/p?q=1 HTTP/1.1"),
        b"GET http://example.com:8080/p?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
        b"GET http://example.com:8080/p?q=1 HTTP/1.0\r\n\r\n",
    ],
    ids=["other-host-header", "same-host-header", "http10-no-host"],
)
def test_absolute_form_target_is_served_with_its_host_and_port(environ_server, raw):
    resp = assert_served(environ_server, raw)
    env = json.loads(resp.body)
    assert {k: env[k] for k in ("HTTP_HOST", "SERVER_NAME", "SERVER_PORT")} == {
        "HTTP_HOST": "example.com:8080",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
    }, env
    assert (env["PATH_INFO"], env["QUERY_STRING"], env["SCRIPT_NAME"]) == ("/p", "q=1", ""), env
    assert env["REQUEST_METHOD"] == "GET", env


def test_absolute_form_post_body_reaches_the_app(environ_server):
    raw = request_line(b"POST http://example.com:8080/p?q=1 HTTP/1.1", b"Content-Length: 5")
    raw += b"hello"
    env = json.loads(assert_served(environ_server, raw).body)
    assert (env["PATH_INFO"], env["HTTP_HOST"], env["body"]) == ("/p", "example.com:8080", "hello")


# -- header fields --------------------------------------------------------------------------

BAD_FIELDS = [
    # RFC 9110 §5.1: field-name = token.
    pytest.param(get_with(b"X(A: v"), id="paren-in-name"),
    pytest.param(get_with(b'X"A: v'), id="quote-in-name"),
    pytest.param(get_with(b"X@A: v"), id="at-in-name"),
    pytest.param(get_with(b"X/A: v"), id="slash-in-name"),
    pytest.param(get_with(b"X{A: v"), id="brace-in-name"),
    pytest.param(get_with(b"X A: v"), id="space-in-name"),
    pytest.param(get_with(b"X\x01A: v"), id="ctl-in-name"),
    pytest.param(get_with(b"X\x80A: v"), id="non-ascii-in-name"),
    pytest.param(get_with(b": v"), id="empty-name"),
    # RFC 9112 §5.1: no whitespace between the name and the colon.
    pytest.param(get_with(b"X-A : v"), id="space-before-colon-other-header"),
    pytest.param(get_with(b"X-A\t: v"), id="tab-before-colon"),
    # RFC 9112 §5.2: obs-fold, with HTAB, and as the very first header line.
    pytest.param(get_with(b"X-A: one", b"\ttwo"), id="obs-fold-tab"),
    pytest.param(b"GET / HTTP/1.1\r\n X-A: v\r\nHost: x\r\n\r\n", id="fold-after-request-line"),
    # RFC 9110 §5.5: CTLs other than HTAB in a value.
    pytest.param(get_with(b"X-A: a\x1fb"), id="ctl-0x1f-in-value"),
    pytest.param(get_with(b"X-A: a\x0bb"), id="vt-in-value"),
    pytest.param(get_with(b"X-A: a\x0cb"), id="ff-in-value"),
    pytest.param(get_with(b"X-A: a\x7fb"), id="del-in-value"),
    pytest.param(get_with(b"X-A: ab\r"), id="bare-cr-at-end-of-value"),
    pytest.param(get_with(b"X-A: \x00"), id="nul-only-value"),
    # RFC 9110 §8.6: Content-Length = 1*DIGIT.
    pytest.param(post_with(b"Content-Length: 1 2", body=b"x" * 12), id="cl-1-space-2"),
    pytest.param(post_with(b"Content-Length: 0x5", body=b"hello"), id="cl-hex"),
    pytest.param(post_with(b"Content-Length: 5,6", body=b"hello!"), id="cl-list-no-space"),
    pytest.param(post_with(b"Content-Length: 5.0", body=b"hello"), id="cl-decimal"),
    # RFC 9112 §3.2: more than one Host line is a 400, even when they agree.
    pytest.param(get_with(b"Host: x"), id="two-identical-hosts"),
    pytest.param(get_with(b"Host: y"), id="two-differing-hosts"),
    pytest.param(get_with(b"hOST: x"), id="two-hosts-differing-case"),
    # RFC 9112 §3.2: HTTP/1.1 without Host is a 400.
    pytest.param(b"GET / HTTP/1.1\r\n\r\n", id="http11-without-host"),
    pytest.param(b"GET / HTTP/1.1\r\nX-A: v\r\n\r\n", id="http11-without-host-other-header"),
    pytest.param(
        b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", id="http11-post-without-host"
    ),
]


@pytest.mark.parametrize("raw", BAD_FIELDS)
def test_bad_header_field_is_400(server, raw):
    assert_rejected(server, raw, (400,))


@pytest.mark.parametrize(
    "raw",
    [
        get_with(b"X-A: a\tb"),
        get_with(b"X-A: caf\xe9"),
        get_with(b"X-A:v"),
        get_with(b"X-A:  \tv \t"),
        get_with(b"X-A:"),
        get_with(b"!#$%&'*+-.^_`|~09aZ: v"),
    ],
    ids=[
        "tab-in-value",
        "obs-text-in-value",
        "no-space-after-colon",
        "ows",
        "empty-value",
        "every-tchar-in-name",
    ],
)
def test_valid_header_field_is_served(server, raw):
    assert assert_served(server, raw).body == b"Hello, world!"


def test_http10_without_host_is_served(server):
    with server.connect(timeout=5) as conn:
        conn.send(b"GET /n/old HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b"old")


def test_identical_duplicate_content_length_is_merged_and_served(environ_server):
    raw = post_with(b"Content-Length: 5", b"Content-Length: 5", body=b"hello")
    env = json.loads(assert_served(environ_server, raw).body)
    assert (env["CONTENT_LENGTH"], env["body"]) == ("5", "hello"), env


def test_content_length_spelled_two_ways_is_refused_or_merged_to_one_number(environ_server):
    # RFC 9110 §8.6: a recipient MAY reject duplicated Content-Length values as invalid or
    # replace them with a single valid Content-Length; never an unusable CONTENT_LENGTH.
    raw = post_with(b"Content-Length: 5", b"Content-Length: 05", body=b"hello")
    with environ_server.connect(timeout=5) as conn:
        conn.send(raw)
        resp = conn.read_response()
    if resp.status != 400:
        assert resp.status == 200, (resp.status, resp.body)
        env = json.loads(resp.body)
        assert (env["CONTENT_LENGTH"], env["body"]) == ("5", "hello"), env


def test_identical_duplicate_content_length_keeps_the_connection_in_sync(server):
    raw = post_with(b"Content-Length: 5", b"Content-Length: 5", body=b"hello")
    with server.connect(timeout=5) as conn:
        conn.send(raw + b"GET /n/after HTTP/1.1\r\nHost: x\r\n\r\n")
        first, second = conn.read_response(), conn.read_response()
    assert (first.status, first.body) == (200, b"hello")
    assert (second.status, second.body) == (200, b"after")


# -- the version ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [b"HTTP/0.9", b"HTTP/3.0", b"HTTP/2.1"])
def test_version_other_than_1x_is_505(server, version):
    assert_rejected(server, get_with(version=version), (505,))


@pytest.mark.parametrize("version", [b"HTTP/1.0", b"HTTP/1.1", b"HTTP/1.5"])
def test_version_1x_is_served(server, version):
    with server.connect(timeout=5) as conn:
        conn.send(get_with(version=version))
        resp = conn.read_response()
    # RFC 9110 §2.5: the server answers in the highest 1.x version it speaks.
    assert (resp.status, resp.version, resp.body) == (200, "HTTP/1.1", b"Hello, world!")
