"""--metrics-bind: the master serves Prometheus' text format at /metrics, summed over every
worker through shared memory; scraped and parsed with prometheus_client's own parser, and
checked against the requests the test sent (apps/queue_time.py)."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from tests import serving
from tests.observe.prometheus import scrape, value


@pytest.mark.timeout(60)
def test_counters_match_the_requests_sent(serve):
    port = serving.free_port()
    with serve("queue_time:app", "--workers", "2", "--metrics-bind", f"127.0.0.1:{port}") as server:
        workers = server.wait_for_workers(2)
        sent_bytes = 0
        for _ in range(6):
            sent_bytes += len(server.get("/").body)
        for _ in range(3):
            resp = server.request("POST", "/", body=b"x" * 10)
            sent_bytes += len(resp.body)
        for _ in range(2):
            resp = server.get("/missing")
            assert resp.status == 404
            sent_bytes += len(resp.body)
        time.sleep(0.3)  # the threads' gauges are sampled 10 times a second
        metrics = scrape(port)
        requests = metrics["ferrogate_requests"]
        listener = f"http://127.0.0.1:{server.port}"  # as the "Listening at" line names it
        assert (
            value(
                requests, "ferrogate_requests_total", status="2xx", method="GET", listener=listener
            )
            == 6
        )
        assert value(requests, "ferrogate_requests_total", status="2xx", method="POST") == 3
        assert value(requests, "ferrogate_requests_total", status="4xx", method="GET") == 2
        duration = metrics["ferrogate_request_duration_seconds"]
        assert value(duration, "ferrogate_request_duration_seconds_count") == 11
        inf = [s for s in duration if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"]
        assert inf[0].value == 11
        assert 0 < value(duration, "ferrogate_request_duration_seconds_sum") < 11
        queue = metrics["ferrogate_queue_time_seconds"]
        assert value(queue, "ferrogate_queue_time_seconds_count") == 11
        assert value(metrics["ferrogate_sent_bytes"], "ferrogate_sent_bytes_total") == sent_bytes
        # queue_time:app does not read the bodies; each came whole with its head, so was read.
        assert value(metrics["ferrogate_received_bytes"], "ferrogate_received_bytes_total") == 30
        assert (
            value(metrics["ferrogate_connections_accepted"], "ferrogate_connections_accepted_total")
            >= 11
        )
        assert value(metrics["ferrogate_workers"], "ferrogate_workers") == 2
        threads = {s.labels["worker"]: s.value for s in metrics["ferrogate_python_threads"]}
        assert set(threads) == {str(pid) for pid in workers}
        assert sum(threads.values()) >= 1
        assert value(metrics["ferrogate_requests_in_flight"], "ferrogate_requests_in_flight") == 0
        restarts = {s.labels["cause"]: s.value for s in metrics["ferrogate_worker_restarts"]}
        causes = ["died", "timeout", "max_requests", "memory", "reload", "stopped", "boot_failed"]
        assert restarts == dict.fromkeys(causes, 0)

        # A worker killed: counted as died, and its replacement adds to the same sums.
        os.kill(workers[0], signal.SIGKILL)
        server.wait_for_workers(2, exclude=[workers[0]])
        serving.wait_for_text(
            lambda: str(scrape(port)["ferrogate_worker_restarts"]), r"'cause': 'died'}, value=1,"
        )
        for _ in range(4):
            server.get("/")
        after = scrape(port)["ferrogate_requests"]
        assert value(after, "ferrogate_requests_total", status="2xx", method="GET") == 10


def test_shed_requests_are_counted(serve):
    port = serving.free_port()
    flags = ("--threads", "1", "--max-queue", "1", "--metrics-bind", f"127.0.0.1:{port}")
    with serve("queue_time:app", *flags) as server:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(2) as pool:
            busy = pool.submit(server.get, "/sleep?1")
            time.sleep(0.2)
            queued = pool.submit(server.get, "/")
            time.sleep(0.2)
            assert server.get("/").status == 503
            assert busy.result(10).status == 200 and queued.result(10).status == 200
        time.sleep(0.3)
        metrics = scrape(port)
        assert value(metrics["ferrogate_requests_shed"], "ferrogate_requests_shed_total") == 1
        assert value(metrics["ferrogate_requests"], "ferrogate_requests_total", status="5xx") == 1


def test_other_paths_are_404(serve):
    port = serving.free_port()
    with serve("queue_time:app", "--metrics-bind", f"127.0.0.1:{port}"):
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert error.value.code == 404


def test_a_taken_port_is_refused_at_start_naming_the_setting():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = serving.start(
            ["queue_time:app", "--metrics-bind", f"127.0.0.1:{port}"],
            binds=[f"127.0.0.1:{serving.free_port()}"],
            wait_ready=False,
        )
        assert server.wait(15) == 4
        assert "--metrics-bind" in server.log()


def test_workers_do_not_hold_the_metrics_port(serve):
    port = serving.free_port()
    with serve("queue_time:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        (worker,) = server.wait_for_workers(1)
        # Once it serves, it has closed its inherited copy (read before, under load, the fd
        # could still be there).
        assert server.get("/").status == 200
        fds = os.listdir(f"/proc/{worker}/fd")
        inodes = {os.readlink(f"/proc/{worker}/fd/{fd}") for fd in fds if fd.isdigit()}
        with socket.create_connection(("127.0.0.1", port)):
            pass
        listening = open("/proc/net/tcp").read().splitlines()[1:]
        metrics_inodes = {
            f"socket:[{line.split()[9]}]"
            for line in listening
            if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
        }
        assert metrics_inodes and not metrics_inodes & inodes


def test_the_metrics_thread_takes_no_signals_meant_for_the_master(serve):
    # A signal sent to the master goes to any thread not blocking it: were it this one,
    # SIGTERM's default action would end the master instead of draining it.
    port = serving.free_port()
    with serve("queue_time:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        blocked = serving.thread_signal_mask(server.pid, "ferrogate-metri")  # 15 characters
        for sig in (
            signal.SIGTERM,
            signal.SIGINT,
            signal.SIGHUP,
            signal.SIGUSR1,
            signal.SIGUSR2,
            signal.SIGQUIT,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGCHLD,
        ):
            assert blocked & (1 << (sig - 1)), sig
        for _ in range(20):
            server.send_signal(signal.SIGUSR1)  # reopen the logs; its default would end it
        time.sleep(0.5)
        assert server.is_running()


def test_requests_refused_by_the_http_layer_are_counted(serve):
    port = serving.free_port()
    with serve("queue_time:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        with server.connect() as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
            assert conn.read_response().status == 400
        # Counted once the connection has ended (after the 400, it lingers to read what the
        # client may still send).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            samples = scrape(port)["ferrogate_requests"]
            if value(samples, "ferrogate_requests_total", status="4xx", method="other") == 1:
                break
            time.sleep(0.05)
        assert value(samples, "ferrogate_requests_total", status="4xx", method="other") == 1
