"""Stopping the master: SIGTERM/SIGINT drain gracefully and exit 0, SIGQUIT stops at once
(apps/sleepy.py). Every test runs its own server, since every test ends it."""

from __future__ import annotations

import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.rawhttp import IncompleteResponse
from tests.serving import is_alive

NOT_SERVED = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, IncompleteResponse)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_idle_server_with_exit_code_0(serve, sig):
    with serve("sleepy:app", "--workers", "2") as server:
        assert server.get("/").status == 200
        workers = server.wait_for_workers(2)
        started = time.monotonic()
        assert server.stop(sig, timeout=10) == 0
        assert time.monotonic() - started < 5
        time.sleep(0.2)
        assert [pid for pid in workers if is_alive(pid)] == []


def test_sigterm_lets_in_flight_request_finish(serve):
    with serve("sleepy:app", "--threads", "2") as server:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(server.request, "GET", "/sleep?2", timeout=20)
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            resp = in_flight.result(timeout=20)
        assert resp.status == 200
        assert server.wait(10) == 0


def test_sigterm_stops_accepting_new_requests(serve):
    with serve("sleepy:app", "--threads", "2") as server:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(server.request, "GET", "/sleep?3", timeout=20)
            time.sleep(0.5)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(NOT_SERVED):
                server.request("GET", "/", timeout=2)
            assert in_flight.result(timeout=20).status == 200
        assert server.wait(10) == 0


def test_graceful_timeout_bounds_the_wait_for_in_flight_requests(serve):
    with serve("sleepy:app", "--threads", "2", "--graceful-timeout", "1") as server:
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(server.request, "GET", "/sleep?30", timeout=20)
            time.sleep(0.5)
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            code = server.wait(15)
            elapsed = time.monotonic() - started
            with pytest.raises(NOT_SERVED):
                in_flight.result(timeout=20)
        assert code is not None and elapsed < 5, f"still running {elapsed:.1f}s after SIGTERM"


def test_idle_keep_alive_connection_is_closed_at_once_on_sigterm(serve):
    with serve("sleepy:app", "--keep-alive", "60") as server:
        with server.connect() as conn:
            conn.send_request("GET", "/")
            assert conn.read_response().status == 200
            started = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert conn.is_closed_by_peer(timeout=5)
            assert server.wait(10) == 0
        assert time.monotonic() - started < 3


def test_sigquit_stops_at_once_despite_in_flight_request(serve):
    with serve("sleepy:app", "--threads", "2") as server:
        workers = server.wait_for_workers(1)
        conn = server.connect(timeout=20)
        conn.send_request("GET", "/sleep?30")
        time.sleep(0.5)
        started = time.monotonic()
        server.send_signal(signal.SIGQUIT)
        assert server.wait(10) is not None
        assert time.monotonic() - started < 3
        assert conn.is_closed_by_peer(timeout=3)
        conn.close()
        time.sleep(0.2)
        assert [pid for pid in workers if is_alive(pid)] == []


def test_port_is_free_again_after_stop(serve):
    with serve("sleepy:app") as server:
        assert server.stop() == 0
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            sock.bind(("127.0.0.1", server.port))  # a leftover listener is not
