"""Command line: exit codes for a bad command line (2) and a failed bind (4), repeatable
--bind (host:port, [::1]:port, unix:/path), --keep-alive."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest

from tests.rawhttp import RawConnection
from tests.serving import APPS_DIR, free_port, start

EXIT_USAGE = 2
EXIT_BIND = 4


def run_until_exit(args, binds=(), timeout: float = 30):
    server = start(args, binds=binds, cwd=APPS_DIR, wait_ready=False)
    code = server.wait(timeout)
    server.kill()
    assert code is not None, f"{args} still running after {timeout}s\n--- log:\n{server.log()}"
    return code, server.log() + server.stdout()


@pytest.mark.parametrize(
    "args",
    [
        ["hello:app", "--no-such-flag"],
        ["hello:app", "--workers", "many"],
        ["hello:app", "--workers", "0"],
        ["hello:app", "--threads", "-1"],
        ["hello:app", "--log-level", "chatty"],
        ["hello:app", "--bind", "127.0.0.1:notaport"],
        [],
    ],
    ids=[
        "unknown-flag",
        "workers-not-int",
        "workers-zero",
        "threads-negative",
        "bad-log-level",
        "bad-port",
        "no-app",
    ],
)
def test_bad_command_line_exits_2(args):
    code, log = run_until_exit(args)
    assert code == EXIT_USAGE, log
    assert log.strip(), "a usage error must say what is wrong"


def test_bind_failure_exits_4_naming_the_address():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        code, log = run_until_exit(["hello:app"], binds=[address])
    assert code == EXIT_BIND, log
    assert address in log
    # The line names who holds the port: this test's own process.
    assert f"pid {os.getpid()} (" in log and "is listening there" in log
    assert len([line for line in log.splitlines() if address in line]) == 1


def environ_via(conn: RawConnection, host: str = "localhost") -> dict:
    conn.send(f"GET /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    resp = conn.read_response()
    assert resp.status == 200
    return json.loads(resp.body)


def test_bind_is_repeatable_across_tcp_and_unix(serve, tmp_path):
    first, second = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    path = tmp_path / "ferrogate.sock"
    with serve("environ_dump:app", binds=[first, second, f"unix:{path}"]) as server:
        for bind in (first, second):
            port = int(bind.rsplit(":", 1)[1])
            with RawConnection(("127.0.0.1", port)) as conn:
                assert environ_via(conn, host=bind)["SERVER_PORT"] == str(port)
        with RawConnection(str(path), family=socket.AF_UNIX) as conn:
            env = environ_via(conn)
        assert env["PATH_INFO"] == "/x"
        log = server.log()
        for bind in (first, second):
            assert f"Listening at http://{bind}" in log


def test_bind_ipv6_loopback(serve):
    # No skip without IPv6: a machine without ::1 fails here, as a missing tool does.
    port = free_port()
    with serve("environ_dump:app", binds=[f"[::1]:{port}"]) as server:
        with RawConnection(("::1", port), family=socket.AF_INET6) as conn:
            env = environ_via(conn)
        assert env["REMOTE_ADDR"] == "::1"
        assert server.is_running()


def test_unix_socket_only(serve, tmp_path):
    path = tmp_path / "only.sock"
    with (
        serve("environ_dump:app", binds=[f"unix:{path}"]),
        RawConnection(str(path), family=socket.AF_UNIX) as conn,
    ):
        assert environ_via(conn)["REQUEST_METHOD"] == "GET"


def test_unix_socket_file_is_removed_on_stop_and_can_be_bound_again(serve, tmp_path):
    path = tmp_path / "again.sock"
    for _ in range(2):
        with serve("environ_dump:app", binds=[f"unix:{path}"]) as server:
            with RawConnection(str(path), family=socket.AF_UNIX) as conn:
                assert environ_via(conn)["REQUEST_METHOD"] == "GET"
            assert server.stop() == 0
        assert not path.exists()


def test_keep_alive_timeout_closes_idle_connection(serve):
    with serve("hello:app", "--keep-alive", "1") as server:
        with server.connect() as conn:
            conn.send_request("GET", "/")
            assert conn.read_response().status == 200
            time.sleep(0.3)  # still open well within the timeout
            conn.send_request("GET", "/")
            assert conn.read_response().status == 200
            started = time.monotonic()
            assert conn.is_closed_by_peer(timeout=5)
            idle = time.monotonic() - started
        assert 0.5 < idle < 3, f"closed after {idle:.1f}s idle, --keep-alive 1"


def test_client_that_connects_and_sends_nothing_is_closed(serve):
    # The listener defers accepting until data arrives (TCP_DEFER_ACCEPT, about 1 s), then the
    # keep-alive timeout applies as to any idle connection.
    with serve("hello:app", "--keep-alive", "1") as server:
        with server.connect() as conn:
            started = time.monotonic()
            assert conn.is_closed_by_peer(timeout=8)
            held = time.monotonic() - started
        assert 0.9 < held < 5, f"closed after {held:.1f}s, --keep-alive 1"


@pytest.mark.parametrize("delay", [0.3, 1.5])
def test_request_sent_a_while_after_connecting_is_served(serve, delay):
    # Before and after the listener's deferral runs out, within the keep-alive timeout.
    with serve("hello:app", "--keep-alive", "5") as server:
        with server.connect() as conn:
            time.sleep(delay)
            conn.send_request("GET", "/")
            assert conn.read_response().status == 200


def test_client_dribbling_its_head_gets_408_after_the_header_timeout(serve):
    # Slowloris: a byte every 0.2 s never completes the head; --header-timeout bounds the
    # head's whole arrival, not the gap between bytes (and --keep-alive does not apply).
    with serve("hello:app", "--header-timeout", "1", "--keep-alive", "30") as server:
        with server.connect() as conn:
            started = time.monotonic()
            head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 100
            answered = False
            for byte in head:
                try:
                    conn.send(bytes([byte]))
                except OSError:
                    break
                if not conn.is_closed_by_peer(timeout=0.2) and conn.buffer:
                    answered = True
                    break
            held = time.monotonic() - started
            assert answered, "a head dribbled for 20 s was never answered"
            response = conn.read_response()
            assert response.status == 408, response
            assert conn.is_closed_by_peer(timeout=3)
        assert 0.9 < held < 3, f"cut off after {held:.1f}s, --header-timeout 1"


def test_slow_app_is_not_cut_off_by_the_keep_alive_timeout(serve):
    # The timeout is for a connection without a request in progress, not for the app.
    with serve("sleepy:app", "--keep-alive", "1") as server:
        with server.connect() as conn:
            conn.send_request("GET", "/sleep?2.5")
            response = conn.read_response()
            assert response.status == 200
            conn.send_request("GET", "/")
            assert conn.read_response().status == 200
