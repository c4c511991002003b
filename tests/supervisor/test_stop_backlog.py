"""A graceful stop answers the clients already waiting in the listen backlog (gunicorn's issue
#3397 drops them), then refuses new ones at once: the master closes its copies of the
listening sockets and each worker closes its own once it has taken what was waiting."""

from __future__ import annotations

import signal
import socket
import threading
import time

import pytest

from tests.rawhttp import RawConnection
from tests.serving import serve

pytestmark = pytest.mark.timeout(60)


def test_backlog_clients_are_answered_and_new_ones_refused_after_sigterm():
    # One connection slot: the slow request holds it, so the next clients wait in the backlog.
    flags = ["--max-connections", "1", "--graceful-timeout", "10", "--log-level", "debug"]
    with serve("sleepy:app", *flags) as server:
        slow_result = {}

        def slow():
            with server.connect(timeout=20) as conn:
                conn.send_request("GET", "/sleep?1.5", close=True)
                slow_result["status"] = conn.read_response().status

        slow_thread = threading.Thread(target=slow)
        slow_thread.start()
        time.sleep(0.3)  # the slow request is in the app
        waiting = []
        for _ in range(5):
            conn = RawConnection((server.host, server.port), timeout=20)
            conn.send_request("GET", "/", close=True)
            waiting.append(conn)
        time.sleep(0.3)
        server.send_signal(signal.SIGTERM)
        try:
            statuses = [conn.read_response().status for conn in waiting]
        except ConnectionError as error:
            raise AssertionError(f"a waiting client got {error!r}\n{server.log()}") from None
        for conn in waiting:
            conn.close()
        assert statuses == [200] * 5, server.log()
        # The slow request is still running: the server is draining, its sockets closed.
        assert slow_thread.is_alive()
        started = time.monotonic()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((server.host, server.port), timeout=5)
        assert time.monotonic() - started < 1
        slow_thread.join(20)
        assert slow_result == {"status": 200}
        assert server.wait(15) == 0, server.log()
