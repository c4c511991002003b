"""--threads T runs T requests at once in a worker; --workers N runs N worker processes
(apps/sleepy.py)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.fixture(scope="module")
def threaded(serve):
    with serve("sleepy:app", "--threads", "4") as s:
        yield s


@pytest.fixture(scope="module")
def single_thread(serve):
    with serve("sleepy:app", "--threads", "1") as s:
        yield s


@pytest.fixture(scope="module")
def two_workers(serve):
    with serve("sleepy:app", "--workers", "2", "--threads", "1") as s:
        yield s


def call(server, path: str) -> dict:
    resp = server.request("GET", path, timeout=20)
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def timed_parallel(server, paths: list[str]) -> tuple[float, list[dict]]:
    started = time.monotonic()
    with ThreadPoolExecutor(len(paths)) as pool:
        results = list(pool.map(lambda p: call(server, p), paths))
    return time.monotonic() - started, results


def test_sleeping_request_does_not_stall_others(threaded):
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(call, threaded, "/sleep?1.5")
        time.sleep(0.2)
        started = time.monotonic()
        for _ in range(3):
            call(threaded, "/fast")
        fast_elapsed = time.monotonic() - started
        assert not slow.done(), "the slow request should still be running"
        slow.result(timeout=10)
    assert fast_elapsed < 0.9


def test_threads_run_requests_at_once(threaded):
    elapsed, results = timed_parallel(threaded, ["/sleep?1"] * 4)
    assert elapsed < 2.5, f"4 one-second requests on 4 threads took {elapsed:.1f}s"
    assert len({r["thread"] for r in results}) == 4
    assert len({r["pid"] for r in results}) == 1


def test_multithread_is_true_with_threads(threaded):
    assert call(threaded, "/")["multithread"] is True


def test_multithread_is_false_with_one_thread(single_thread):
    assert call(single_thread, "/")["multithread"] is False


def test_one_thread_serves_one_request_at_a_time(single_thread):
    elapsed, _ = timed_parallel(single_thread, ["/sleep?0.5"] * 3)
    assert elapsed >= 1.4


def test_workers_flag_starts_that_many_worker_processes(two_workers):
    workers = two_workers.wait_for_workers(2)
    assert two_workers.pid not in workers


def test_multiprocess_is_true_with_workers(two_workers):
    assert call(two_workers, "/")["multiprocess"] is True


def test_concurrent_blocking_requests_are_served_by_every_worker(two_workers):
    workers = two_workers.wait_for_workers(2)
    _, results = timed_parallel(two_workers, ["/sleep?0.3"] * 10)
    assert {r["pid"] for r in results} == set(workers)
