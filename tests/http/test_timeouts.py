"""--header-timeout, --keep-alive and --socket-timeout on the wire: a head trickled past the
header timeout gets 408 and a close, an idle connection lives for the keep-alive time, and a
client that stops sending its body or stops reading its response is cut off: the app's
wsgi.input.read() raises TimeoutError and its iterable is still closed (apps/timeouts.py)."""

from __future__ import annotations

import re
import select
import socket
import time
import uuid

import pytest

from tests.rawhttp import build_request

pytestmark = pytest.mark.timeout(40)

HEADER_TIMEOUT = 2.0
SOCKET_TIMEOUT = 2.0
KEEP_ALIVE = 4.0
#: How long after the header timeout the 408 and the close may come.
HEADER_SLACK = 1.5
#: How long after the socket timeout the app may see its error or its close().
SOCKET_SLACK = 3.0
#: The idle wait may last up to half as long again as --keep-alive (see --help).
KEEP_ALIVE_MAX = KEEP_ALIVE * 1.5
STREAM_BYTES = 64 * 1024 * 1024

#: A head long enough that trickling it takes far longer than the header timeout.
SLOW_HEAD = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n"
#: A short head; 27 bytes at 0.05 s apart arrive within 1.35 s.
QUICK_HEAD = b"GET /n HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def timeout_log(tmp_path_factory):
    path = tmp_path_factory.mktemp("timeouts") / "events.log"
    path.write_text("")
    return path


@pytest.fixture(scope="module")
def server(serve, timeout_log):
    flags = [
        "--header-timeout", str(HEADER_TIMEOUT),
        "--keep-alive", str(KEEP_ALIVE),
        "--socket-timeout", str(SOCKET_TIMEOUT),
    ]  # fmt: skip
    with serve("timeouts:app", *flags, env={"TIMEOUT_LOG": str(timeout_log)}) as s:
        yield s


def new_tag() -> str:
    return uuid.uuid4().hex


def events(log_path, tag: str) -> dict[str, tuple[float, str]]:
    """The events recorded for ``tag``: {event: (monotonic time, detail)} (first of each)."""
    out: dict[str, tuple[float, str]] = {}
    for line in log_path.read_text().splitlines():
        parts = line.split(" ", 3)
        if parts[0] == tag and parts[1] not in out:
            out[parts[1]] = (float(parts[2]), parts[3] if len(parts) > 3 else "")
    return out


def wait_for_event(log_path, tag: str, event: str, timeout: float) -> tuple[float, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = events(log_path, tag)
        if event in found:
            return found[event]
        if time.monotonic() > deadline:
            raise AssertionError(f"no {event!r} for {tag} within {timeout}s; recorded: {found}")
        time.sleep(0.02)


def trickle(conn, data: bytes, interval: float) -> float:
    """Send ``data`` one byte every ``interval`` seconds until it is sent or the server answers
    or closes; returns the monotonic time of the first byte."""
    first = time.monotonic()
    for i in range(len(data)):
        if i:
            readable, _, _ = select.select([conn.sock], [], [], interval)
            if readable:
                break
        try:
            conn.send(data[i : i + 1])
        except (BrokenPipeError, ConnectionResetError):
            break
    return first


def closed_within(conn, deadline: float) -> bool:
    """True if the server closes (EOF or reset) before monotonic ``deadline``, reading and
    dropping anything it still sends."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        conn.sock.settimeout(left)
        try:
            data = conn.sock.recv(1 << 20)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not data:
            return True


# -- --header-timeout -------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [0.25, 0.9], ids=["byte-every-0.25s", "byte-every-0.9s"])
def test_head_trickled_past_the_header_timeout_gets_408_and_close(server, interval):
    # Every gap is shorter than the timeout: it is the whole head that is too slow (slowloris).
    mark = server.log_mark()
    with server.connect(timeout=10) as conn:
        port = conn.local_port
        first = trickle(conn, SLOW_HEAD, interval)
        try:
            resp = conn.read_response()
        except ConnectionResetError:
            pytest.fail("connection reset instead of a 408")
        answered = time.monotonic() - first
        assert resp.status == 408, (resp.status, resp.reason, resp.body)
        assert HEADER_TIMEOUT - 0.1 <= answered <= HEADER_TIMEOUT + HEADER_SLACK, answered
        assert closed_within(conn, first + HEADER_TIMEOUT + HEADER_SLACK), "not closed"
    # One refusal line: `[WARNING] 408 from 127.0.0.1:PORT: <reason>`.
    server.wait_for_log(rf"\[WARNING\] 408 from 127\.0\.0\.1:{port}: .+", since=mark, timeout=3)
    assert server.log_since(mark).count(f"127.0.0.1:{port}:") == 1, server.log_since(mark)
    assert server.get("/").status == 200


def test_second_head_on_a_keep_alive_connection_has_its_own_header_timeout(server):
    with server.connect(timeout=10) as conn:
        conn.send(QUICK_HEAD)
        assert conn.read_response().status == 200
        time.sleep(1.0)  # idle, well under --keep-alive; the head's clock starts at its first byte
        first = trickle(conn, SLOW_HEAD, 0.25)
        resp = conn.read_response()
        answered = time.monotonic() - first
        assert resp.status == 408, (resp.status, resp.body)
        assert HEADER_TIMEOUT - 0.1 <= answered <= HEADER_TIMEOUT + HEADER_SLACK, answered
        assert closed_within(conn, first + HEADER_TIMEOUT + HEADER_SLACK), "not closed"


def test_head_trickled_within_the_header_timeout_is_served(server):
    with server.connect(timeout=10) as conn:
        first = trickle(conn, QUICK_HEAD, 0.05)
        assert time.monotonic() - first < HEADER_TIMEOUT - 0.4
        resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b"Hello, world!")


def test_idle_connection_waits_for_keep_alive_not_header_timeout(server):
    # No byte at all: that is the keep-alive wait, not a head that is late.
    with server.connect(timeout=10) as conn:
        start = time.monotonic()
        assert not conn.is_closed_by_peer(timeout=HEADER_TIMEOUT + HEADER_SLACK), (
            "an idle connection was closed after the header timeout"
        )
        assert closed_within(conn, start + KEEP_ALIVE_MAX + 1.5), "idle connection never closed"
        assert time.monotonic() - start >= KEEP_ALIVE - 0.1
        assert conn.buffer == b""


def test_idle_connection_after_a_response_waits_for_keep_alive(server):
    with server.connect(timeout=10) as conn:
        conn.send(QUICK_HEAD)
        assert conn.read_response().status == 200
        start = time.monotonic()
        assert not conn.is_closed_by_peer(timeout=HEADER_TIMEOUT + HEADER_SLACK)
        assert closed_within(conn, start + KEEP_ALIVE_MAX + 1.5), "idle connection never closed"
        assert time.monotonic() - start >= KEEP_ALIVE - 0.1


def test_short_keep_alive_closes_an_idle_connection_before_a_long_header_timeout(serve):
    with serve("timeouts:app", "--header-timeout", "5", "--keep-alive", "1") as server:
        with server.connect(timeout=10) as conn:
            start = time.monotonic()
            assert closed_within(conn, start + 1 * 1.5 + 1.0), "idle connection not closed"
            assert time.monotonic() - start >= 0.9
            assert conn.buffer == b""
        # A head trickled over 3 s (past --keep-alive, within --header-timeout) is served.
        with server.connect(timeout=10) as conn:
            trickle(conn, QUICK_HEAD, 3.0 / len(QUICK_HEAD))
            resp = conn.read_response()
        assert (resp.status, resp.body) == (200, b"Hello, world!")


def test_keep_alive_0_closes_after_every_response(serve):
    with serve("timeouts:app", "--keep-alive", "0") as server:
        with server.connect(timeout=10) as conn:
            conn.send(QUICK_HEAD)
            resp = conn.read_response()
            assert (resp.status, resp.body) == (200, b"Hello, world!")
            assert (resp.header("Connection") or "").lower() == "close", resp.headers
            assert closed_within(conn, time.monotonic() + 2), "connection left open"
        with server.connect(timeout=10) as conn:  # HTTP/1.0 asking for keep-alive: the same
            conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = conn.read_response()
            assert (resp.header("Connection") or "").lower() == "close", resp.headers
            assert closed_within(conn, time.monotonic() + 2), "connection left open"


# -- --socket-timeout: a body that stops arriving ---------------------------------------------


def assert_read_timed_out(server, timeout_log, tag: str, conn, stalled_at: float) -> None:
    """The app's read raised TimeoutError about SOCKET_TIMEOUT after the stall, its iterable
    was closed, and the connection is cut off."""
    when, detail = wait_for_event(timeout_log, tag, "read-error", SOCKET_TIMEOUT + SOCKET_SLACK)
    name, is_oserror, _ = (detail.split(" ", 2) + [""])[:3]
    assert (name, is_oserror) == ("TimeoutError", "True"), detail
    assert when - stalled_at >= SOCKET_TIMEOUT - 0.2, f"timed out after {when - stalled_at:.2f}s"
    assert when - stalled_at <= SOCKET_TIMEOUT + SOCKET_SLACK
    wait_for_event(timeout_log, tag, "close", 3.0)
    assert closed_within(conn, time.monotonic() + 5), "the stalled client was not cut off"
    assert "read-done" not in events(timeout_log, tag)


@pytest.mark.parametrize("split", [False, True], ids=["with-head", "after-head"])
def test_content_length_body_stalled_halfway_raises_timeout_in_the_app(server, timeout_log, split):
    tag = new_tag()
    head = b"POST /read?%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" % tag.encode()
    with server.connect(timeout=10) as conn:
        if split:
            conn.send(head)
            time.sleep(0.3)
            conn.send(b"h" * 500)
        else:
            conn.send(head + b"h" * 500)
        stalled_at = time.monotonic()
        assert_read_timed_out(server, timeout_log, tag, conn, stalled_at)
    assert server.get("/").status == 200


@pytest.mark.parametrize(
    "sent",
    [b"400\r\n" + b"c" * 512, b"10\r\n" + b"c" * 16 + b"\r\n", b"10\r\n"],
    ids=["mid-chunk", "between-chunks", "after-size-line"],
)
def test_chunked_body_stalled_raises_timeout_in_the_app(server, timeout_log, sent):
    tag = new_tag()
    head = b"POST /read?%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % (
        tag.encode()
    )
    with server.connect(timeout=10) as conn:
        conn.send(head)
        time.sleep(0.2)
        conn.send(sent)
        stalled_at = time.monotonic()
        assert_read_timed_out(server, timeout_log, tag, conn, stalled_at)
    assert server.get("/").status == 200


@pytest.mark.parametrize("stall", ["body", "response"])
def test_socket_timeout_is_logged_once(server, timeout_log, stall):
    tag = new_tag()
    mark = server.log_mark()
    if stall == "body":
        conn = server.connect(timeout=10)
        conn.send(
            b"POST /read?%s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nhalf" % tag.encode()
        )
        sock = conn.sock
    else:
        sock = unread_stream_connection(server, tag)
    try:
        wait_for_event(timeout_log, tag, "close", SOCKET_TIMEOUT + SOCKET_SLACK)
    finally:
        sock.close()
    time.sleep(1.0)
    logged = server.log_since(mark)
    timeouts = [line for line in logged.splitlines() if re.search(r"(?i)time(d)?[ -]?out", line)]
    assert len(timeouts) == 1, f"wanted one line about the socket timeout, got:\n{logged}"
    assert "Traceback" not in logged, logged


def test_body_sent_slowly_but_steadily_is_not_cut_off(server, timeout_log):
    # 10 parts 0.5 s apart: 5 s in all, longer than the socket timeout, but never a 2 s stall.
    tag = new_tag()
    with server.connect(timeout=10) as conn:
        conn.send(
            b"POST /read?%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" % (tag.encode())
        )
        for _ in range(10):
            time.sleep(0.5)
            conn.send(b"p" * 100)
        resp = conn.read_response()
    assert (resp.status, resp.body) == (200, b"read 1000")
    assert "read-error" not in events(timeout_log, tag)


# -- --socket-timeout: a response that is not read --------------------------------------------


def unread_stream_connection(server, tag: str):
    """A connection with a small receive buffer that asks for /stream and reads only the head."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(10)
    sock.connect((server.host, server.port))
    sock.sendall(build_request("GET", f"/stream?{tag}"))
    return sock


def test_client_that_stops_reading_a_large_response_is_cut_off(server, timeout_log):
    tag = new_tag()
    sock = unread_stream_connection(server, tag)
    try:
        asked = time.monotonic()
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 "), head[:200]
        # Read nothing more: the server's writes stall once the socket buffers are full.
        when, _ = wait_for_event(timeout_log, tag, "close", SOCKET_TIMEOUT + SOCKET_SLACK)
        assert when - asked <= SOCKET_TIMEOUT + SOCKET_SLACK
        assert when - asked >= SOCKET_TIMEOUT - 0.2, f"cut off after {when - asked:.2f}s"
        assert "generator-exit" in events(timeout_log, tag), events(timeout_log, tag)
        # The server's side is closed: what is still buffered drains, then EOF (or a reset).
        received, deadline = len(head), time.monotonic() + 10
        while time.monotonic() < deadline:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                data = sock.recv(1 << 20)
            except ConnectionResetError:
                break
            except socket.timeout:
                pytest.fail("the server never closed the stalled connection")
            if not data:
                break
            received += len(data)
        assert received < STREAM_BYTES, "the whole response went through"
    finally:
        sock.close()
    assert server.get("/").status == 200


def test_client_reading_steadily_is_not_cut_off(server, timeout_log):
    # 256 KiB every 0.1 s (about 2.5 MB/s) for 5 s: slower than the app writes, so the
    # server's writes wait on the client all along, but the client never stops reading.
    tag = new_tag()
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(build_request("GET", f"/stream?{tag}"))
        end = time.monotonic() + 5
        received = 0
        while time.monotonic() < end:
            data = sock.recv(256 * 1024)
            assert data, f"the server closed a steadily reading client after {received} bytes"
            received += len(data)
            time.sleep(0.1)
        assert "close" not in events(timeout_log, tag), events(timeout_log, tag)
        assert received < STREAM_BYTES
    wait_for_event(timeout_log, tag, "close", 10)
