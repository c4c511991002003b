"""Request limits: --limit-request-line (414), --limit-request-fields (431),
--limit-request-field-size (431), each at the limit and one below (served) and one above
(refused), with the defaults (8190, 100, 8190), a small value, and 0 (only the 64 KiB head
cap); --max-request-body (413 before the app runs, no 100 Continue; chunked bodies over it get
413 and a close); --keep-alive 0 (every response closes); and a bad value for each new flag
(exit 2 naming the flag). Refusals: one response, a close, one warning line, no app call
(apps/call_log.py)."""

from __future__ import annotations

import time

import pytest

from tests.http.refusals import (
    assert_refused,
    assert_served,
    assert_still_serving,
    calls,
    recorded_server,
    send_tolerant,
)
from tests.rawhttp import chunked
from tests.serving import APPS_DIR, start

pytestmark = pytest.mark.timeout(20)

DEFAULT_LINE = 8190
DEFAULT_FIELDS = 100
DEFAULT_FIELD_SIZE = 8190
HEAD_CAP = 64 * 1024
#: The small limits of the ``custom`` server.
LINE, FIELDS, FIELD_SIZE, BODY = 100, 5, 100, 100
EXIT_USAGE = 2


@pytest.fixture(scope="module")
def defaults(serve):
    with recorded_server(serve) as s:
        yield s


@pytest.fixture(scope="module")
def custom(serve):
    flags = [
        "--limit-request-line", str(LINE),
        "--limit-request-fields", str(FIELDS),
        "--limit-request-field-size", str(FIELD_SIZE),
        "--max-request-body", str(BODY),
    ]  # fmt: skip
    with recorded_server(serve, *flags) as s:
        yield s


@pytest.fixture(scope="module")
def unlimited(serve):
    flags = ["--limit-request-line", "0", "--limit-request-fields", "0"]
    with recorded_server(serve, *flags, "--limit-request-field-size", "0") as s:
        yield s


@pytest.fixture
def limits(request):
    """The server named by a test's ``server_name`` parameter."""
    return request.getfixturevalue(request.param)


# -- builders -------------------------------------------------------------------------------

LINE_PREFIX, LINE_SUFFIX = b"GET /n/", b" HTTP/1.1"
REST_OF_HEAD = b"\r\nHost: x\r\n\r\n"


def line_of(length: int) -> tuple[bytes, bytes]:
    """(request, path tail echoed by /n/) for a request line of exactly ``length`` bytes."""
    tail = b"a" * (length - len(LINE_PREFIX) - len(LINE_SUFFIX))
    line = LINE_PREFIX + tail + LINE_SUFFIX
    assert len(line) == length
    return line + REST_OF_HEAD, tail


def fields(count: int) -> bytes:
    """GET /n/f with exactly ``count`` header fields, Host included."""
    lines = [b"Host: x"] + [b"X-H%d: v" % i for i in range(count - 1)]
    return b"GET /n/f HTTP/1.1\r\n" + b"".join(x + b"\r\n" for x in lines) + b"\r\n"


def field_of(length: int) -> bytes:
    """GET /n/f with one header line ``X-Big: aaa`` of exactly ``length`` bytes (no CRLF)."""
    line = b"X-Big: " + b"a" * (length - len(b"X-Big: "))
    assert len(line) == length
    return b"GET /n/f HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n"


def head_by_line(size: int) -> tuple[bytes, bytes]:
    """A request head of exactly ``size`` bytes made long by its request line."""
    return line_of(size - len(REST_OF_HEAD))


def head_by_field(size: int) -> bytes:
    """A request head of exactly ``size`` bytes made long by one header line."""
    return field_of(size - len(field_of(10)) + 10)


def head_by_fields(size: int) -> bytes:
    """A request head of exactly ``size`` bytes made of many short header lines."""
    base = b"GET /n/f HTTP/1.1\r\nHost: x\r\n"
    lines, used, i = [], len(base) + 2, 0
    while size - used > 40:
        line = b"X-H%d: v\r\n" % i
        lines.append(line)
        used += len(line)
        i += 1
    last = b"X-Last: "
    lines.append(last + b"a" * (size - used - len(last) - 2) + b"\r\n")
    head = base + b"".join(lines) + b"\r\n"
    assert len(head) == size
    return head


# -- --limit-request-line -> 414 ------------------------------------------------------------

LINE_CASES = [
    pytest.param("defaults", DEFAULT_LINE, id="default"),
    pytest.param("custom", LINE, id="custom-100"),
]


@pytest.mark.parametrize(("limits", "limit"), LINE_CASES, indirect=["limits"])
@pytest.mark.parametrize("delta", [-1, 0])
def test_request_line_at_or_below_the_limit_is_served(limits, limit, delta):
    raw, tail = line_of(limit + delta)
    assert assert_served(limits, raw).body == tail


@pytest.mark.parametrize(("limits", "limit"), LINE_CASES, indirect=["limits"])
def test_request_line_one_over_the_limit_is_414(limits, limit):
    assert_refused(limits, line_of(limit + 1)[0], (414,))


def test_request_line_limit_0_leaves_only_the_head_cap(unlimited):
    raw, tail = line_of(20_000)
    assert assert_served(unlimited, raw).body == tail
    raw, tail = head_by_line(HEAD_CAP)
    assert assert_served(unlimited, raw).body == tail
    assert_refused(unlimited, head_by_line(HEAD_CAP + 1)[0], (431,))


# -- --limit-request-fields -> 431 ----------------------------------------------------------

FIELDS_CASES = [
    pytest.param("defaults", DEFAULT_FIELDS, id="default"),
    pytest.param("custom", FIELDS, id="custom-5"),
]


@pytest.mark.parametrize(("limits", "limit"), FIELDS_CASES, indirect=["limits"])
@pytest.mark.parametrize("delta", [-1, 0])
def test_header_fields_at_or_below_the_limit_are_served(limits, limit, delta):
    assert assert_served(limits, fields(limit + delta)).body == b"f"


@pytest.mark.parametrize(("limits", "limit"), FIELDS_CASES, indirect=["limits"])
def test_one_header_field_over_the_limit_is_431(limits, limit):
    assert_refused(limits, fields(limit + 1), (431,))


def test_request_fields_limit_0_leaves_only_the_head_cap(unlimited):
    assert assert_served(unlimited, fields(3000)).body == b"f"
    assert assert_served(unlimited, head_by_fields(HEAD_CAP)).body == b"f"
    assert_refused(unlimited, head_by_fields(HEAD_CAP + 1), (431,))


# -- --limit-request-field-size -> 431 ------------------------------------------------------

FIELD_SIZE_CASES = [
    pytest.param("defaults", DEFAULT_FIELD_SIZE, id="default"),
    pytest.param("custom", FIELD_SIZE, id="custom-100"),
]


@pytest.mark.parametrize(("limits", "limit"), FIELD_SIZE_CASES, indirect=["limits"])
@pytest.mark.parametrize("delta", [-1, 0])
def test_header_line_at_or_below_the_limit_is_served(limits, limit, delta):
    assert assert_served(limits, field_of(limit + delta)).body == b"f"


@pytest.mark.parametrize(("limits", "limit"), FIELD_SIZE_CASES, indirect=["limits"])
def test_header_line_one_over_the_limit_is_431(limits, limit):
    assert_refused(limits, field_of(limit + 1), (431,))


@pytest.mark.parametrize(("limits", "limit"), FIELD_SIZE_CASES, indirect=["limits"])
def test_host_line_over_the_field_size_limit_is_431(limits, limit):
    host = b"Host: " + b"h" * (limit + 1 - len(b"Host: "))
    assert_refused(limits, b"GET /n/f HTTP/1.1\r\n" + host + b"\r\n\r\n", (431,))


def test_field_size_limit_0_leaves_only_the_head_cap(unlimited):
    assert assert_served(unlimited, field_of(30_000)).body == b"f"
    assert assert_served(unlimited, head_by_field(HEAD_CAP)).body == b"f"
    assert_refused(unlimited, head_by_field(HEAD_CAP + 1), (431,))


def test_limits_from_the_environment(serve):
    env = {"FERROGATE_LIMIT_REQUEST_FIELDS": "3", "FERROGATE_LIMIT_REQUEST_LINE": "50"}
    with recorded_server(serve, env=env) as server:
        assert assert_served(server, fields(3)).body == b"f"
        assert_refused(server, fields(4), (431,))
        assert assert_served(server, line_of(50)[0]).body == line_of(50)[1]
        assert_refused(server, line_of(51)[0], (414,))


# -- --max-request-body -> 413 --------------------------------------------------------------


def post(length: int, body: bytes | None = None, *extra: bytes) -> bytes:
    """POST /echo with ``Content-Length: length`` and ``body`` (``length`` bytes by default)."""
    head = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % length
    head += b"".join(x + b"\r\n" for x in extra) + b"\r\n"
    return head + (b"b" * length if body is None else body)


def post_chunked(body: bytes) -> bytes:
    return b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body


@pytest.mark.parametrize("length", [BODY - 1, BODY])
def test_body_at_or_below_the_limit_is_served(custom, length):
    assert assert_served(custom, post(length), method="POST").body == b"b" * length


def test_content_length_over_the_limit_is_413_before_the_app(custom):
    assert_refused(custom, post(BODY + 1), (413,), method="POST")


def test_huge_content_length_is_413(custom):
    assert_refused(custom, post(10**15, b""), (413,), method="POST")


def test_content_length_over_the_limit_with_expect_gets_413_not_100_continue(custom):
    # Only the head is sent: the server must not invite the body with 100 Continue.
    head = post(BODY + 1, b"", b"Expect: 100-continue")
    resp = assert_refused(custom, head, (413,), method="POST")
    assert resp.status == 413


def test_expect_100_continue_within_the_limit_still_gets_100(custom):
    with custom.connect(timeout=5) as conn:
        conn.send(post(BODY, b"", b"Expect: 100-continue"))
        assert conn.read_response().status == 100
        conn.send(b"c" * BODY)
        final = conn.read_response(method="POST")
    assert (final.status, final.body) == (200, b"c" * BODY)


@pytest.mark.parametrize(
    "parts",
    [[b"x" * 50, b"y" * 50], [b"z" * BODY], [b"w" * 33, b"w" * 33, b"w" * 33]],
    ids=["50+50", "100", "33+33+33"],
)
def test_chunked_body_at_or_below_the_limit_is_served(custom, parts):
    resp = assert_served(custom, post_chunked(chunked(*parts)), method="POST")
    assert resp.body == b"".join(parts)


@pytest.mark.parametrize(
    "parts",
    [[b"x" * 50, b"y" * 51], [b"z" * (BODY + 1)], [b"w" * 40] * 10],
    ids=["50+51", "101", "10x40"],
)
def test_chunked_body_over_the_limit_is_413_and_closed(custom, parts):
    with custom.connect(timeout=5) as conn:
        send_tolerant(conn, post_chunked(chunked(*parts)))  # every chunk in one send
        resp = conn.read_response(method="POST")
        assert resp.status == 413, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert_still_serving(custom)


def test_chunked_body_over_the_limit_never_reaches_the_app_whole(custom):
    # The app may be called, but its read fails: it never answers with the whole body.
    before = len(calls(custom))
    with custom.connect(timeout=5) as conn:
        send_tolerant(conn, post_chunked(chunked(b"q" * 60, b"q" * 60)))
        resp = conn.read_response(method="POST")
    assert resp.status == 413 and b"q" * 120 not in resp.body, (resp.status, resp.body)
    assert calls(custom)[before:] in ([], ["POST /echo"])


def test_chunked_body_growing_over_the_limit_later_is_413_and_closed(custom):
    # The app is already reading when the chunk that crosses the limit arrives: its read
    # raises OSError, and as no response head went out yet the client gets 413.
    before = len(calls(custom))
    with custom.connect(timeout=5) as conn:
        conn.send(post_chunked(b"3c\r\n" + b"r" * 60 + b"\r\n"))
        time.sleep(0.3)
        send_tolerant(conn, b"3c\r\n" + b"s" * 60 + b"\r\n0\r\n\r\n")
        resp = conn.read_response(method="POST")
        assert resp.status == 413, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    assert calls(custom)[before:] == ["POST /echo"]
    assert_still_serving(custom)


def test_body_is_unlimited_by_default(defaults):
    big = b"u" * (1 << 20)
    assert assert_served(defaults, post(len(big), big), method="POST").body == big
    raw = post_chunked(chunked(*[big[i : i + 65536] for i in range(0, len(big), 65536)]))
    assert assert_served(defaults, raw, method="POST").body == big


# -- --keep-alive 0 -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_keep_alive(serve):
    with serve("basic:app", "--keep-alive", "0") as s:
        yield s


@pytest.mark.parametrize(
    "raw",
    [
        b"GET /n/one HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /chunks HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /n/one HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
        b"GET /n/one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ],
    ids=["get", "streamed", "post", "http11-asks-keep-alive", "http10-asks-keep-alive"],
)
def test_keep_alive_0_closes_after_every_response(no_keep_alive, raw):
    with no_keep_alive.connect(timeout=5) as conn:
        conn.send(raw)
        resp = conn.read_response(method=raw.split(b" ")[0].decode())
        assert resp.status == 200, (resp.status, resp.body)
        assert resp.header_values("Connection") == ["close"], resp.headers
        assert conn.is_closed_by_peer(timeout=3), f"connection left open: {conn.buffer!r}"


def test_keep_alive_0_answers_only_the_first_pipelined_request(no_keep_alive):
    two = b"GET /n/first HTTP/1.1\r\nHost: x\r\n\r\nGET /n/second HTTP/1.1\r\nHost: x\r\n\r\n"
    with no_keep_alive.connect(timeout=5) as conn:
        conn.send(two)
        first = conn.read_response()
        assert (first.body, first.header("Connection")) == (b"first", "close")
        assert conn.is_closed_by_peer(timeout=3), f"second request answered: {conn.buffer!r}"


# -- bad values for the new flags -----------------------------------------------------------

BAD_FLAGS = [
    ("--limit-request-line", "-1"),
    ("--limit-request-line", "abc"),
    ("--limit-request-fields", "-1"),
    ("--limit-request-fields", "many"),
    ("--limit-request-field-size", "-1"),
    ("--limit-request-field-size", "1.5"),
    ("--max-request-body", "-1"),
    ("--max-request-body", "lots"),
    ("--max-connections", "x"),
    ("--max-connections", "-1"),
    ("--header-timeout", "x"),
    ("--socket-timeout", "x"),
    ("--keep-alive", "x"),
    ("--forwarded-allow-ips", "300.1.1.1"),
    ("--forwarded-allow-ips", "10.0.0.0/33"),
    ("--forwarded-allow-ips", "not-an-ip"),
    ("--proxy-protocol=yes", None),
    ("--permit-unconventional-methods=yes", None),
]


@pytest.mark.parametrize(
    ("flag", "value"), BAD_FLAGS, ids=[f"{f}={v}" if v else f for f, v in BAD_FLAGS]
)
def test_bad_value_for_a_new_flag_exits_2_naming_it(flag, value):
    args = ["basic:app", flag] + ([value] if value is not None else [])
    server = start(args, binds=["127.0.0.1:0"], cwd=APPS_DIR, wait_ready=False)
    code = server.wait(10)
    server.kill()
    assert code == EXIT_USAGE, f"{args} -> {code}\n{server.log()}"
    assert flag.split("=")[0] in server.log(), server.log()
