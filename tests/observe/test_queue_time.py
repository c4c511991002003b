"""Queue time and load shedding: ``ferrogate.queue_time`` in the environ (the wait for a
Python thread, plus what a trusted proxy's ``X-Request-Start`` says it waited before us), and
``--max-queue`` / ``--max-queue-time`` answering 503 with Retry-After without calling the app
(apps/queue_time.py, apps/sleepy.py)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serving import wait_for_text


def queue_time(resp) -> float:
    assert resp.status == 200, resp
    answer = json.loads(resp.body)
    assert answer["type"] == "float", answer
    return answer["queue_time"]


def test_an_idle_worker_has_next_to_no_queue_time(serve):
    with serve("queue_time:app") as server:
        assert 0 <= queue_time(server.get("/")) < 0.05


def test_a_request_behind_a_busy_thread_counts_its_wait(serve):
    with serve("queue_time:app", "--threads", "1") as server:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(server.get, "/sleep?1")
            time.sleep(0.2)
            waited = queue_time(server.get("/"))
            assert busy.result(timeout=10).status == 200
        assert 0.6 < waited < 1.5


def request_start(seconds_ago: float) -> dict[str, str]:
    return {"X-Request-Start": f"t={int((time.time() - seconds_ago) * 1e6)}"}


def test_x_request_start_from_a_trusted_proxy_counts(serve):
    # 127.0.0.1 is in the default --forwarded-allow-ips.
    with serve("queue_time:app") as server:
        assert 0.5 <= queue_time(server.get("/", headers=request_start(0.5))) < 1.0
        # Milliseconds (nginx's ${msec} without its dot) and garbage.
        millis = {"X-Request-Start": f"t={int((time.time() - 0.3) * 1e3)}"}
        assert 0.3 <= queue_time(server.get("/", headers=millis)) < 0.8
        assert queue_time(server.get("/", headers={"X-Request-Start": "t=soon"})) < 0.05


def test_x_request_start_from_anyone_else_is_ignored(serve):
    with serve("queue_time:app", "--forwarded-allow-ips", "10.9.9.9") as server:
        assert queue_time(server.get("/", headers=request_start(5))) < 0.05


def test_max_queue_answers_503_at_once_beyond_the_limit(serve):
    with serve("queue_time:app", "--threads", "1", "--max-queue", "2") as server:
        with ThreadPoolExecutor(3) as pool:
            busy = pool.submit(server.get, "/sleep?1.5")
            time.sleep(0.3)
            # Below and at the limit: queued (and served once the thread is free).
            queued = [pool.submit(server.get, "/") for _ in range(2)]
            time.sleep(0.3)
            # Above it: refused at once, without the app.
            started = time.monotonic()
            refused = server.get("/")
            took = time.monotonic() - started
            assert refused.status == 503, refused
            assert refused.header("Retry-After") == "1"
            assert b'"app"' not in refused.body
            assert took < 0.2, took
            assert busy.result(timeout=10).status == 200
            assert [q.result(timeout=10).status for q in queued] == [200, 200]
        assert "--max-queue" in server.log()


def test_a_request_that_waited_past_max_queue_time_is_not_run(serve):
    # The upstream wait alone is over the limit: refused before the app, with Retry-After.
    with serve("queue_time:app", "--max-queue-time", "0.2") as server:
        refused = server.get("/", headers=request_start(0.3))
        assert (refused.status, refused.header("Retry-After")) == (503, "1")
        assert 0.1 <= queue_time(server.get("/", headers=request_start(0.1))) < 0.2


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


#: The load test's app: 2 threads of requests sleeping 0.1 s serve 20 a second.
APP_SECONDS, THREADS, MAX_QUEUE_TIME = 0.1, 2, 0.2
OFFERED_PER_SECOND, LOAD_SECONDS = 4 * THREADS / APP_SECONDS, 3.0


@pytest.mark.timeout(60)
def test_shedding_keeps_accepted_requests_fast_under_four_times_capacity(serve):
    flags = ("--threads", str(THREADS), "--max-queue-time", str(MAX_QUEUE_TIME))
    log = ("--access-log", "-", "--access-log-format", "json")
    with serve("sleepy:app", *flags, *log) as server:
        results: list[tuple[int, float]] = []
        lock = threading.Lock()

        def one() -> None:
            started = time.monotonic()
            status = server.get(f"/sleep?{APP_SECONDS}").status
            with lock:
                results.append((status, time.monotonic() - started))

        # Open loop: requests arrive on schedule whether or not earlier ones were answered.
        total = int(OFFERED_PER_SECOND * LOAD_SECONDS)
        with ThreadPoolExecutor(64) as pool:
            begin = time.monotonic()
            for n in range(total):
                time.sleep(max(0.0, begin + n / OFFERED_PER_SECOND - time.monotonic()))
                pool.submit(one)
        accepted = [t for status, t in results if status == 200]
        refused = [t for status, t in results if status == 503]
        assert len(accepted) + len(refused) == total, results
        # The two threads stay busy, so about a quarter gets through.
        assert len(accepted) >= total * 0.15, (len(accepted), len(refused))
        assert len(refused) >= total * 0.5, (len(accepted), len(refused))
        # Accepted: within the limit plus the app's own duration (and 50 ms of slack for a
        # shared machine), as the client sees it.
        p99_accepted = percentile(accepted, 0.99)
        assert p99_accepted < MAX_QUEUE_TIME + APP_SECONDS + 0.05, p99_accepted
        # Refused: as the server timed them (head read to 503 written; the client's own
        # clock adds its thread scheduling on a busy machine). Refused at once (no Python
        # thread took them, queue_ms null) under 5 ms; the few whose estimate was short and
        # that a thread refused when it took them waited up to the limit.
        lines = [
            json.loads(m.group(0)) for m in wait_for_text(server.stdout, r"^\{.*\}$", count=total)
        ]
        at_once = [
            line["duration_ms"]
            for line in lines
            if line["status"] == 503 and line["queue_ms"] is None
        ]
        late = [line for line in lines if line["status"] == 503 and line["queue_ms"] is not None]
        assert len(at_once) + len(late) == len(refused)
        assert len(late) <= len(refused) * 0.1, (len(late), len(refused))
        assert all(line["queue_ms"] < MAX_QUEUE_TIME * 1000 + 60 for line in late), late
        print(
            f"accepted {len(accepted)}, p99 {p99_accepted * 1000:.1f} ms (client); refused "
            f"{len(refused)}: {len(at_once)} at once, "
            f"server p50 {percentile(at_once, 0.5):.3f} ms, "
            f"p99 {percentile(at_once, 0.99):.3f} ms, max {max(at_once):.3f} ms; client p50 "
            f"{percentile(refused, 0.5) * 1000:.2f} ms; {len(late)} refused by a thread"
        )
        assert percentile(at_once, 0.99) < 5, sorted(at_once)[-5:]
        assert percentile(refused, 0.5) < 0.005
