"""--request-timeout: ferrogate.RequestTimeout is raised in the runaway request's thread (a
pure-Python loop, a time.sleep(60)), its finally blocks and close() run, the client gets a
504 (or, once the head was sent, an aborted connection), and the worker's other requests are
unaffected (apps/runaway.py)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import ferrogate
import pytest

from tests.rawhttp import IncompleteResponse

TIMEOUT_S = 1.0


def events(server) -> list[str]:
    return json.loads(server.get("/events").body)


def test_request_timeout_is_a_base_exception():
    assert issubclass(ferrogate.RequestTimeout, BaseException)
    assert not issubclass(ferrogate.RequestTimeout, Exception)
    assert "RequestTimeout" in ferrogate.__all__


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", ["/spin", "/sleep", "/swallow"])
def test_a_runaway_request_gets_504_within_the_timeout_plus_a_second(serve, path):
    with serve("runaway:app", "--threads", "4", "--request-timeout", str(TIMEOUT_S)) as server:
        worker = server.wait_for_workers(1)
        started = time.monotonic()
        resp = server.get(path)
        took = time.monotonic() - started
        print(f"{path}: 504 after {took:.3f}s (--request-timeout {TIMEOUT_S})")
        assert resp.status == 504, resp
        assert TIMEOUT_S <= took < TIMEOUT_S + 1, took
        seen = events(server)
        assert f"finally {path}" in seen
        assert "swallowed" not in seen
        assert "RequestTimeout" in server.log() and path in server.log()
        # The same worker serves on.
        assert server.get("/").status == 200
        assert server.wait_for_workers(1) == worker


@pytest.mark.timeout(30)
def test_other_requests_of_the_worker_are_unaffected(serve):
    with serve("runaway:app", "--threads", "4", "--request-timeout", str(TIMEOUT_S)) as server:
        with ThreadPoolExecutor(2) as pool:
            runaways = [pool.submit(server.get, path) for path in ("/spin", "/sleep")]
            time.sleep(0.2)
            # While both run (one holding the GIL in a loop), quick requests are answered.
            for _ in range(5):
                resp = server.get("/")
                assert (resp.status, resp.body) == (200, b"done\n")
            assert [r.result(timeout=10).status for r in runaways] == [504, 504]
        # Requests after the interruptions are not hit by a stale one.
        for _ in range(20):
            assert server.get("/").status == 200
        assert "close /" in events(server)


@pytest.mark.timeout(30)
def test_after_the_head_the_connection_is_aborted_and_close_runs(serve):
    with serve("runaway:app", "--request-timeout", str(TIMEOUT_S)) as server:
        started = time.monotonic()
        # The 200 head was handed to the connection: no 504 can follow it.
        with pytest.raises(IncompleteResponse):
            server.get("/stream")
        assert time.monotonic() - started < TIMEOUT_S + 1
        seen = events(server)
        assert "finally stream" in seen and "close stream" in seen


def test_without_the_setting_nothing_is_interrupted(serve):
    with serve("runaway:app", "--threads", "2", "--graceful-timeout", "1") as server:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(server.request, "GET", "/sleep", timeout=3)
            time.sleep(2)
            assert events(server) == []
