"""A defect reproduction: the app answers 401 at once without reading the body, and the client
stalls after sending part of it (keeps the socket open, sends nothing more).

Before the fix the connection stayed busy discarding the unread body, so SIGTERM waited the
whole --graceful-timeout (30 s) for it, and a keep-alive connection was held forever. Now a
stop must not wait for it, and the server must let the stalled connection go
(apps/deny.py)."""

from __future__ import annotations

import signal
import socket
import time

import pytest

pytestmark = pytest.mark.timeout(60)

#: How long a SIGTERM may take with only a stalled, already answered connection open.
STOP_BOUND_S = 5.0
MIB = 1024 * 1024

CHUNKED_HEAD = b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
FIRST_CHUNK = b"400\r\n" + b"c" * 1024 + b"\r\n"
LENGTH_HEAD = b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MIB
LENGTH_PART = b"l" * (10 * 1024)
EXPECT_HEAD = (
    b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % MIB
)

STALLS = [
    pytest.param(CHUNKED_HEAD, FIRST_CHUNK, id="chunked-first-chunk-only"),
    pytest.param(LENGTH_HEAD, LENGTH_PART, id="content-length-1MiB-10KiB-sent"),
    # The client waits for 100 Continue, gets the 401 instead and sends nothing.
    pytest.param(EXPECT_HEAD, b"", id="expect-100-continue-nothing-sent"),
]


def send_and_read_401(server, head: bytes, part: bytes):
    """Send ``head`` and the first part of its body, read the 401, and leave the socket open."""
    conn = server.connect(timeout=10)
    conn.send(head + part)
    resp = conn.read_response(method="POST")
    assert (resp.status, resp.body) == (401, b"authentication required"), resp
    return conn, resp


def gone_within(conn, timeout: float) -> bool:
    """True if the server closes (EOF or reset) within ``timeout`` s, dropping any bytes."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        conn.sock.settimeout(left)
        try:
            if not conn.sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True


@pytest.mark.parametrize(("head", "part"), STALLS)
def test_sigterm_does_not_wait_for_a_stalled_unread_body(serve, head, part):
    with serve("deny:app", "--graceful-timeout", "30") as server:
        conn, _ = send_and_read_401(server, head, part)
        try:
            time.sleep(0.5)  # the server is now waiting for the rest of the body
            assert server.is_running()
            start = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(STOP_BOUND_S)
            took = time.monotonic() - start
            assert code is not None, (
                f"server still running {STOP_BOUND_S}s after SIGTERM (waits for the stalled "
                f"connection)\n--- log:\n{server.log()}"
            )
            assert code == 0, f"exit code {code}\n--- log:\n{server.log()}"
            assert took < STOP_BOUND_S
            assert gone_within(conn, 2.0), "the stalled connection outlived the server"
        finally:
            conn.close()


@pytest.mark.parametrize(("head", "part"), STALLS)
@pytest.mark.parametrize(
    ("flags", "bound"),
    [
        pytest.param((), 10.0, id="defaults"),
        pytest.param(("--socket-timeout", "2"), 2.0 + 3.0, id="socket-timeout-2"),
    ],
)
def test_stalled_keep_alive_connection_is_closed_after_the_401(serve, head, part, flags, bound):
    # A keep-alive request (no Connection: close): the server may try to discard the rest of
    # the body to reuse the connection, but must not stay busy with it forever.
    with serve("deny:app", *flags) as server:
        conn, resp = send_and_read_401(server, head, part)
        try:
            assert gone_within(conn, bound), (
                f"stalled connection still open {bound}s after the 401 "
                f"(Connection: {resp.header('Connection')!r})"
            )
        finally:
            conn.close()
        # And it is still serving.
        assert server.get("/").status == 401


@pytest.mark.parametrize(("head", "part"), STALLS)
def test_server_keeps_serving_others_while_a_client_stalls(serve, head, part):
    with serve("deny:app", "--threads", "1") as server:
        conn, _ = send_and_read_401(server, head, part)
        try:
            start = time.monotonic()
            for _ in range(5):
                assert server.get("/").status == 401
            assert time.monotonic() - start < 2.0
        finally:
            conn.close()
