"""The master watches its workers: a worker killed with SIGKILL is replaced and service goes
on; one sent SIGTERM finishes its requests first (apps/sleepy.py)."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serving import is_alive
from tests.supervisor.load import served_by


@pytest.fixture
def server(serve):
    with serve("sleepy:app", "--workers", "2") as s:
        yield s



def test_killed_worker_is_replaced_by_a_new_one(server):
    old = server.wait_for_workers(2)
    victim, survivor = old
    os.kill(victim, signal.SIGKILL)
    new = server.wait_for_workers(2, exclude=[victim], timeout=15)
    assert survivor in new
    (replacement,) = set(new) - {survivor}
    assert replacement not in old
    server.wait_for_log(rf"Booting worker with pid: {replacement}\b")


def test_service_continues_after_worker_is_killed(server):
    victim = server.wait_for_workers(2)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(victim) and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = {served_by(server) for _ in range(10)}  # every request answered, none lost
    assert victim not in pids
    new = server.wait_for_workers(2, exclude=[victim], timeout=15)
    assert {served_by(server) for _ in range(10)} <= set(new)


def test_every_killed_worker_is_replaced(serve):
    with serve("sleepy:app", "--workers", "1") as server:
        seen = []
        for _ in range(3):
            (pid,) = server.wait_for_workers(1, exclude=seen, timeout=15)
            seen.append(pid)
            assert served_by(server) == pid
            os.kill(pid, signal.SIGKILL)
        (last,) = server.wait_for_workers(1, exclude=seen, timeout=15)
        assert served_by(server) == last
        assert server.is_running()


def test_master_is_not_a_worker(server):
    workers = server.wait_for_workers(2)
    assert server.pid not in workers
    assert all(is_alive(pid) for pid in workers)
    for _ in range(6):
        assert served_by(server) != server.pid


@pytest.mark.timeout(30)
def test_sigterm_sent_to_a_worker_drains_it_and_the_master_replaces_it(serve):
    with serve("sleepy:app", "--threads", "2") as server:
        (worker,) = server.wait_for_workers(1)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(server.request, "GET", "/sleep?1", timeout=15)
            time.sleep(0.3)
            os.kill(worker, signal.SIGTERM)
            resp = in_flight.result(timeout=15)
        assert resp.status == 200 and json.loads(resp.body)["pid"] == worker
        (replacement,) = server.wait_for_workers(1, exclude=[worker], timeout=10)
        assert served_by(server) == replacement
        line = server.wait_for_log(rf"Worker {worker} exited with code 0 after .*")[0]
        # A graceful stop is no crash: replaced at once, no back-off.
        assert line.group(0).endswith("starting a new one"), line.group(0)
