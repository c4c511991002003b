"""Several workers share the listening socket: concurrent connections reach more than one,
and a worker killed under load costs at most the requests it had in flight
(apps/reload_token.py answers with its worker pid)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serving import is_alive
from tests.supervisor.load import Load, served_by

#: Client threads of the load in the SIGKILL test; each has at most one request in flight.
CLIENTS = ["/", "/", "/", "/sleep?0.1", "/sleep?0.1", "/sleep?0.3"]


@pytest.fixture
def server(serve):
    with serve("reload_token:app", "--workers", "3") as s:
        yield s


@pytest.mark.timeout(30)
def test_concurrent_fresh_connections_reach_several_workers(server):
    # Concurrent, because spreading is about load: workers share one listening socket and
    # sequential connections to an idle server may all go to whichever worker wakes first.
    workers = server.wait_for_workers(3)
    # A worker process exists before it accepts: on a loaded machine the others may still be
    # loading the app during the first batch. Batches of 300 until two workers answered.
    counts: Counter = Counter()
    deadline = time.monotonic() + 30
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(counts) < 2:
            assert time.monotonic() < deadline, f"one worker answered every connection: {counts}"
            counts.update(pool.map(lambda _: served_by(server), range(300)))
    assert set(counts) <= set(workers)


@pytest.mark.timeout(90)
def test_sigkill_under_load_loses_only_in_flight_requests(server):
    workers = server.wait_for_workers(3)
    with Load(server, CLIENTS) as load:
        load.wait_for_answers(100, since=0, timeout=20)
        busy = Counter(o.answer["pid"] for o in load.ok())
        victim = busy.most_common(1)[0][0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while is_alive(victim) and time.monotonic() < deadline:
            time.sleep(0.005)
        dead_at = time.monotonic()
        assert not is_alive(victim)
        new = server.wait_for_workers(3, exclude=[victim], timeout=15)
        load.wait_for_answers(100, since=time.monotonic(), timeout=20)
    (replacement,) = set(new) - set(workers)
    failed = load.failed()
    # A request can only be lost if it was under way when the worker died.
    late = [o for o in failed if o.started > dead_at]
    assert late == [], f"requests sent after the worker died failed: {late[:5]}"
    assert len(failed) <= len(CLIENTS), f"{len(failed)} lost: {failed[:8]}"
    assert not any(o.answer["pid"] == victim for o in load.ok() if o.started > dead_at)
    server.wait_for_log(rf"Worker {victim} was killed by signal 9")
    server.wait_for_log(rf"Booting worker with pid: {replacement}\b")
    # Sequential connections to a server at rest go to whichever worker wakes first, which
    # may be another one for a long run on a loaded machine: go on for a while, not a count.
    deadline, sent = time.monotonic() + 30, 0
    while served_by(server) != replacement:
        sent += 1
        assert time.monotonic() < deadline, (
            f"replacement worker {replacement} answered none of {sent} requests in 30 s"
        )
