"""Forward's strategies and health against real upstreams: round robin within 10%, weights,
sticky hashing, least connections, an upstream killed under load, one brought back by its
health checks, and health shared by the workers of a host."""

from __future__ import annotations

import collections
import glob
import os
import signal
import threading
import time

import pytest
import requests

from tests import serving
from tests.middleware.forward_peers import PROXY_WAYS, ferrogate_upstream, proxy


@pytest.fixture(scope="module")
def three():
    with (
        ferrogate_upstream("a") as a,
        ferrogate_upstream("b") as b,
        ferrogate_upstream("c") as c,
    ):
        yield [a.url(""), b.url(""), c.url("")]


def count_names(url: str, requests_count: int, headers=None) -> collections.Counter:
    with requests.Session() as session:
        return collections.Counter(
            session.get(url, headers=headers).json()["name"] for _ in range(requests_count)
        )


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_round_robin_spreads_300_requests_within_10_percent(way, three):
    with proxy(way, three, "--workers", "2", strip_prefix=True) as p:
        counts = count_names(p.url("/proxy/echo"), 300)
        assert set(counts) == {"a", "b", "c"}
        assert all(90 <= n <= 110 for n in counts.values()), counts


def test_round_robin_follows_the_weights(three):
    a, b, _ = three
    with proxy("lifted", [a + ";weight=3", b], strip_prefix=True) as p:
        counts = count_names(p.url("/proxy/echo"), 200)
        assert counts == {"a": 150, "b": 50}, counts


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_hash_on_a_header_is_sticky_and_spreads_the_keys(way, three):
    with proxy(way, three, "--workers", "2", strip_prefix=True, strategy="hash",
               hash_key="header:X-User") as p:
        homes = {}
        for user in range(60):
            counts = count_names(p.url("/proxy/echo"), 3, headers={"X-User": f"user{user}"})
            assert len(counts) == 1, counts
            homes[user] = next(iter(counts))
        spread = collections.Counter(homes.values())
        assert set(spread) == {"a", "b", "c"} and min(spread.values()) >= 8, spread


def test_hash_on_the_client_address_is_sticky(three):
    with proxy("lifted", three, "--workers", "2", strip_prefix=True, strategy="hash") as p:
        assert len(count_names(p.url("/proxy/echo"), 20)) == 1


def test_least_conn_sends_more_to_the_faster_upstream(tmp_path):
    with (
        ferrogate_upstream("slow", env={"UPSTREAM_DELAY": "0.2"}) as slow,
        ferrogate_upstream("fast", env={"UPSTREAM_DELAY": "0.02"}) as fast,
        proxy("lifted", [slow.url(""), fast.url("")], strip_prefix=True,
              strategy="least_conn") as p,
    ):
        counts: collections.Counter = collections.Counter()
        deadline = time.monotonic() + 3

        def client():
            with requests.Session() as session:
                while time.monotonic() < deadline:
                    counts[session.get(p.url("/proxy/echo")).json()["name"]] += 1

        threads = [threading.Thread(target=client) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Round robin would give both the same count; least_conn keeps the fast one busier.
        assert counts["fast"] > 3 * counts["slow"], counts


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_a_killed_upstream_costs_no_errors_and_its_share_moves(way):
    with (
        ferrogate_upstream("a") as a,
        ferrogate_upstream("b") as b,
        ferrogate_upstream("victim") as victim,
        proxy(way, [a.url(""), b.url(""), victim.url("")], strip_prefix=True) as p,
    ):
        statuses: collections.Counter = collections.Counter()
        after_kill: collections.Counter = collections.Counter()
        killed_at = [float("inf")]
        stop = threading.Event()

        def client():
            with requests.Session() as session:
                while not stop.is_set():
                    sent = time.monotonic()
                    response = session.get(p.url("/proxy/echo"))
                    statuses[response.status_code] += 1
                    if response.status_code == 200 and sent > killed_at[0]:
                        after_kill[response.json()["name"]] += 1

        threads = [threading.Thread(target=client) for _ in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        os.killpg(victim.pid, signal.SIGKILL)
        killed_at[0] = time.monotonic()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
        # GETs are retried on the next upstream: not even the requests in flight fail.
        assert set(statuses) == {200}, statuses
        assert set(after_kill) == {"a", "b"}, after_kill


def test_an_upstream_brought_back_rejoins_after_its_health_checks():
    port = serving.free_port()
    bind = f"127.0.0.1:{port}"
    with ferrogate_upstream("steady") as steady:
        comeback = serving.start(["upstream:app"], binds=[bind],
                                 env={"UPSTREAM_NAME": "comeback"})
        try:
            # A probe must pass within the interval: both answer before the proxy's first
            # ones (a listening socket is not yet an app that answers, on a loaded machine),
            # and the interval leaves a busy machine time to answer one (0.2 s did not).
            for upstream in (steady, comeback):
                assert upstream.get("/health").status == 200
            with proxy("lifted", [steady.url(""), f"http://{bind}"], strip_prefix=True,
                       health="/health", health_interval=0.5, health_passes=2) as p:
                assert count_names(p.url("/proxy/echo"), 4) == {"steady": 2, "comeback": 2}
                comeback.stop()
                serving.wait_for_text(p.log, r"upstream http://.* failed its health check")
                assert count_names(p.url("/proxy/echo"), 6) == {"steady": 6}
                comeback = serving.start(["upstream:app"], binds=[bind],
                                         env={"UPSTREAM_NAME": "comeback"})
                serving.wait_for_text(p.log, r"upstream http://.* is back in rotation")
                assert count_names(p.url("/proxy/echo"), 6) == {"steady": 3, "comeback": 3}
        finally:
            comeback.kill()


def test_a_sick_upstream_leaves_rotation_while_it_still_answers(tmp_path):
    sick = tmp_path / "sick"
    with (
        ferrogate_upstream("well") as well,
        ferrogate_upstream("ill", env={"UPSTREAM_SICK": str(sick)}) as ill,
        proxy("lifted", [well.url(""), ill.url("")], strip_prefix=True, health="/health",
              health_interval=0.2) as p,
    ):
        sick.touch()
        serving.wait_for_text(p.log, r"failed its health check")
        assert count_names(p.url("/proxy/echo"), 6) == {"well": 6}
        sick.unlink()
        serving.wait_for_text(p.log, r"is back in rotation")
        assert count_names(p.url("/proxy/echo"), 6) == {"well": 3, "ill": 3}


def test_passive_health_is_shared_by_the_workers_of_the_host():
    dead = f"http://127.0.0.1:{serving.free_port()}"
    with (
        ferrogate_upstream("live") as live,
        proxy("lifted", [dead, live.url("")], "--workers", "3", strip_prefix=True,
              max_fails=1, fail_timeout=60) as p,
    ):
        workers = set()
        sent = 0
        deadline = time.monotonic() + 30
        # New connections until at least 30 were sent and two workers took some (the kernel
        # may give a long run of them to one worker while another is starting).
        while sent < 30 or len(workers) < 2:
            assert time.monotonic() < deadline, f"one worker took every request: {workers}"
            assert requests.get(p.url("/proxy/echo"), headers={"Connection": "close"}
                                ).status_code == 200
            workers.add(requests.get(p.url("/pid"), headers={"Connection": "close"}).text)
            sent += 1
        # One worker's failure took it out for all: per-process state would have each of the
        # three workers meet it (round robin) and take it out on its own.
        serving.wait_for_text(p.log, rf"upstream {dead} is out of rotation")
        assert p.log().count(f"upstream {dead} is out of rotation") == 1, p.log()
        assert p.server is not None
        master = p.server.pid
        assert glob.glob(f"/dev/shm/ferrogate-ratelimit-{master}-forward-*")
    # The master removes the table when it exits.
    assert not glob.glob(f"/dev/shm/ferrogate-ratelimit-{master}-forward-*")


def worker_and_upstream(url: str, path: str) -> tuple[str, str]:
    """The proxy worker (its /pid, on the same keep-alive connection) and the upstream that
    answered ``path`` through it; a new connection each time, so either worker may take it."""
    with requests.Session() as session:
        pid = session.get(f"{url}/pid").text
        return pid, session.get(f"{url}{path}").json()["name"]


def test_round_robin_turn_is_shared_by_the_workers(three):
    with proxy("lifted", three, "--workers", "2", strip_prefix=True) as p:
        assert p.server is not None
        p.server.wait_for_workers(2)
        # The kernel picks the worker for each new connection, and a worker still starting
        # or one busy core can leave a long run to one of them: go on until both took some.
        pairs: list[tuple[str, str]] = []
        deadline = time.monotonic() + 30
        while len(pairs) < 60 or len({pid for pid, _ in pairs}) < 2:
            assert time.monotonic() < deadline, f"one worker took every request: {pairs}"
            pairs.append(worker_and_upstream(p.url(""), "/proxy/echo"))
        names = [name for _, name in pairs]
        # One turn for the host: a b c a b c..., whichever worker takes each request (with a
        # turn per worker, two in a row on different workers would often repeat one).
        cycle = names[:3] * (len(names) // 3 + 1)
        assert sorted(names[:3]) == ["a", "b", "c"] and names == cycle[: len(names)], names


def test_least_conn_counts_the_requests_of_every_worker():
    with (
        ferrogate_upstream("a") as a,
        ferrogate_upstream("b") as b,
        proxy("lifted", [a.url(""), b.url("")], "--workers", "2", strip_prefix=True,
              strategy="least_conn") as p,
    ):
        assert p.server is not None
        p.server.wait_for_workers(2)
        answers: list[tuple[str, str]] = []

        def slow() -> None:
            answers.append(worker_and_upstream(p.url(""), "/proxy/slow?s=2.5"))

        threads = []
        for _ in range(10):
            threads.append(threading.Thread(target=slow))
            threads[-1].start()
            time.sleep(0.1)  # each in flight before the next is sent, all within 2.5 s
        for thread in threads:
            thread.join()
        # Whichever worker each came to (new connections: both take some), the in-flight
        # counts were the host's, so the upstreams took turns: 5 and 5.
        assert collections.Counter(name for _, name in answers) == {"a": 5, "b": 5}, answers


def test_least_conn_forgets_the_requests_of_a_killed_worker():
    with (
        ferrogate_upstream("a") as a,
        ferrogate_upstream("b") as b,
        proxy("lifted", [a.url(""), b.url("")], "--workers", "1", strip_prefix=True,
              strategy="least_conn") as p,
    ):
        assert p.server is not None
        [worker] = p.server.wait_for_workers(1)

        def slow() -> None:
            try:
                requests.get(p.url("/proxy/slow?s=6"), timeout=20)
            except requests.RequestException:
                pass  # the worker is killed under it

        for _ in range(3):  # a, b, a in flight: a counts 2, b 1
            threading.Thread(target=slow, daemon=True).start()
        time.sleep(1.0)  # the three are at the upstreams
        os.kill(worker, signal.SIGKILL)
        p.server.wait_for_workers(1, exclude=[worker])
        # The new worker took the killed one's slot and its counts off the totals: both
        # upstreams are idle again, so sequential requests alternate. With the counts left
        # behind, b (1 in flight) would take every one of them and a (2) none.
        counts = count_names(p.url("/proxy/echo"), 10)
        assert counts == {"a": 5, "b": 5}, counts
