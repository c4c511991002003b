"""--timeout: a worker whose oldest request has run for the timeout, or whose I/O loop stops
reporting, is aborted with SIGABRT (faulthandler writes its Python threads' stacks to the
error log), killed if it lingers, and replaced (apps/stuck.py)."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serving import is_alive
from tests.supervisor.load import served_by

#: From the stuck request's start to the worker's death: --timeout 2, plus the master's
#: 0.2 s tick, plus a loaded machine's slack.
KILLED_WITHIN_S = 3.0


def wait_until_dead(pid: int, timeout: float) -> float:
    """Seconds until ``pid`` is gone; fails after ``timeout``."""
    started = time.monotonic()
    while is_alive(pid):
        if time.monotonic() - started > timeout:
            raise AssertionError(f"worker {pid} still alive after {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.mark.timeout(30)
def test_stuck_request_gets_its_worker_aborted_with_stacks_logged_and_replaced(serve):
    with serve("stuck:app", "--timeout", "2", "--threads", "4") as server:
        (worker,) = server.wait_for_workers(1)
        assert served_by(server) == worker
        with ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            stuck = pool.submit(server.request, "GET", "/stuck?10", timeout=15)
            wait_until_dead(worker, timeout=KILLED_WITHIN_S + 2)
            died_after = time.monotonic() - started
            with pytest.raises(Exception):  # noqa: B017 (the connection dies with its worker)
                stuck.result(timeout=15)
        assert 2.0 <= died_after < KILLED_WITHIN_S, f"killed {died_after:.2f}s after the request"
        line = server.wait_for_log(
            rf"Worker {worker} timed out \(--timeout 2\): GET /stuck\?10 has been running for "
            r"(\d+\.\d)s"
        )[0]
        assert 2.0 <= float(line.group(1)) < KILLED_WITHIN_S
        print(
            f"\n--timeout 2: aborted at {line.group(1)}s, dead {died_after:.2f}s after the request"
        )
        # faulthandler's dump: every Python thread's stack, the app's frame included.
        server.wait_for_log(r"(?s)Fatal Python error: Aborted.*in stuck_in_the_app")
        server.wait_for_log(
            rf"Worker {worker}, which timed out, was killed by signal 6 \(SIGABRT\)"
        )
        (replacement,) = server.wait_for_workers(1, exclude=[worker])
        assert served_by(server) == replacement


@pytest.mark.timeout(30)
def test_requests_shorter_than_the_timeout_keep_their_worker(serve):
    with serve("stuck:app", "--timeout", "1", "--threads", "4") as server:
        (worker,) = server.wait_for_workers(1)
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: server.get("/stuck?0.6"), range(6)))
        assert [a.status for a in answers] == [200] * 6
        time.sleep(1.2)  # idle for longer than the timeout: an idle worker is not stuck
        assert served_by(server) == worker
        assert "timed out" not in server.log()


@pytest.mark.timeout(30)
def test_frozen_worker_is_killed_and_replaced(serve):
    # SIGSTOP freezes every thread, its I/O loop included: its slot stops being updated.
    with serve("stuck:app", "--timeout", "1") as server:
        (worker,) = server.wait_for_workers(1)
        # Serving first: a worker still loading its app is not under --timeout, and under
        # load the fork can be seen well before the app is loaded.
        assert served_by(server) == worker
        os.kill(worker, signal.SIGSTOP)
        took = wait_until_dead(worker, timeout=5)
        # 1 s without a report, the 0.2 s tick, then 1 s for SIGABRT (which a stopped
        # process cannot act on) before SIGKILL.
        assert took < 3.5, f"frozen worker killed after {took:.2f}s"
        server.wait_for_log(
            rf"Worker {worker} timed out \(--timeout 1\): its I/O loop has not reported for"
        )
        server.wait_for_log(rf"Worker {worker}, which timed out, was killed by signal 9")
        (replacement,) = server.wait_for_workers(1, exclude=[worker])
        assert served_by(server) == replacement


@pytest.mark.timeout(30)
def test_timeout_0_lets_a_request_run_as_long_as_it_takes(serve):
    with serve("stuck:app", "--timeout", "0") as server:
        (worker,) = server.wait_for_workers(1)
        assert server.request("GET", "/stuck?1.5", timeout=10).status == 200
        assert served_by(server) == worker
