"""--health-path, --ready-path and --drain-delay: probes the worker answers itself, without
Python (so even while every Python thread is busy), and a graceful stop that first says 503
to them for the drain delay while still serving, then stops accepting (apps/queue_time.py)."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.rawhttp import IncompleteResponse

PROBES = ("--health-path", "/healthz", "--ready-path", "/readyz")
NOT_SERVED = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, IncompleteResponse)


def test_probes_answer_natively_while_every_python_thread_is_busy(serve):
    with serve("queue_time:app", "--threads", "1", *PROBES) as server:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(server.get, "/sleep?2")
            time.sleep(0.3)
            for path, body in (("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
                started = time.monotonic()
                resp = server.get(path)
                assert time.monotonic() - started < 0.5, "the probe waited for Python"
                assert (resp.status, resp.body) == (200, body)
                assert resp.header("Cache-Control") == "no-store"
            assert busy.result(timeout=10).status == 200
        # Anything else (a query does not matter to a probe) still goes to the app.
        assert server.get("/healthz?x=1").body == b"ok\n"
        assert b'"app": true' in server.get("/readyz/").body


def test_probe_paths_are_off_by_default(serve):
    with serve("queue_time:app") as server:
        for path in ("/healthz", "/readyz"):
            assert b'"app": true' in server.get(path).body


def test_probe_paths_come_from_the_environment_too(serve):
    env = {"FERROGATE_HEALTH_PATH": "/live"}
    with serve("queue_time:app", env=env) as server:
        assert server.get("/live").body == b"ok\n"


def test_bad_probe_path_is_refused_naming_the_setting(serve):
    from tests import serving

    server = serving.start(["queue_time:app", "--ready-path", "readyz"], wait_ready=False)
    assert server.wait(10) == 2
    assert "--ready-path" in server.log()


@pytest.mark.timeout(30)
def test_drain_delay_flips_probes_to_503_while_still_serving(serve):
    with serve("queue_time:app", "--workers", "2", "--drain-delay", "2", *PROBES) as server:
        server.wait_for_workers(2)
        assert server.get("/readyz").status == 200
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # Within the drain delay: the probes say 503, requests are still served.
        for path, body in (("/readyz", b"draining\n"), ("/healthz", b"draining\n")):
            resp = server.get(path)
            assert (resp.status, resp.body) == (503, body)
        assert server.get("/").status == 200
        # After it: no longer accepting, and the stop ends with exit 0.
        assert server.wait(10) == 0
        elapsed = time.monotonic() - started
        assert 2.0 <= elapsed < 5, elapsed
        with pytest.raises(NOT_SERVED):
            server.get("/readyz")
        assert "--drain-delay" in server.log()


def test_without_drain_delay_a_stop_is_prompt(serve):
    with serve("queue_time:app", *PROBES) as server:
        assert server.get("/readyz").status == 200
        started = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - started < 1.5
