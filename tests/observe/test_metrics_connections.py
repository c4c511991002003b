"""--metrics-bind, the counters of connections and bytes: request body bytes as read (a
chunked upload, a body read by the app's thread, an upload cut off), connections refused by
reason (--max-connections, a bad head, a bad PROXY preamble, a failed TLS handshake), TLS
handshakes and their failures by listener, and worker restarts by cause. Each is scraped from
the real endpoint after real traffic."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import time

import httpx
import pytest
import requests

from tests import serving
from tests.observe.prometheus import scrape, value, wait_for_value
from tests.rawhttp import chunked
from tests.tls.conftest import pki as pki  # the session's test PKI, as a fixture here
from tests.tls.conftest import tls_flags


@pytest.mark.timeout(60)
def test_bytes_in_are_the_body_bytes_read_not_the_declared_length(serve):
    port = serving.free_port()
    with serve("input_reader:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        # Chunked: no Content-Length at all; the decoded bytes count, not the framing.
        parts = (b"a" * 10_000, b"b" * 70_000, b"c" * 20_000)
        with server.connect() as conn:
            head = b"POST /digest HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            conn.send(head + chunked(*parts))
            assert json.loads(conn.read_response().body)["size"] == 100_000
        assert wait_for_value(port, "ferrogate_received_bytes", 100_000) == 100_000
        # Too long to arrive with its head: the app's thread reads it off the socket.
        resp = server.request("POST", "/digest", body=b"d" * 300_000)
        assert json.loads(resp.body)["size"] == 300_000
        assert wait_for_value(port, "ferrogate_received_bytes", 400_000) == 400_000
        # 1 MB declared, 30,000 bytes sent, then the client goes: only those count.
        with server.connect() as conn:
            conn.send(b"POST /digest HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
            conn.send(b"e" * 30_000)
            time.sleep(0.3)
            conn.sock.shutdown(socket.SHUT_WR)
            conn.read_until_close()
        assert wait_for_value(port, "ferrogate_received_bytes", 430_000) == 430_000
        # No TLS listener: no TLS families.
        assert "ferrogate_tls_handshakes" not in scrape(port)


@pytest.mark.timeout(60)
def test_connections_closed_at_max_connections_are_counted_as_refused(serve):
    port = serving.free_port()
    flags = ("--max-connections", "2", "--metrics-bind", f"127.0.0.1:{port}")
    with serve("queue_time:app", *flags) as server:
        listener = f"http://127.0.0.1:{server.port}"
        refused = dict(reason="max_connections", listener=listener)
        # Each sends a request and stays open (keep-alive). Why not just connect: the listener
        # is TCP_DEFER_ACCEPT, so a client that sends nothing is not accepted at all.
        first = server.connect()
        first.send_request("GET", "/")
        assert first.read_response().status == 200
        time.sleep(0.1)
        # Below the limit, then at it: nothing refused, a request on an open one served.
        second = server.connect()
        second.send_request("GET", "/")
        assert second.read_response().status == 200
        time.sleep(0.7)  # older than the age (0.5 s) under which none is closed for room
        assert (
            value(
                scrape(port)["ferrogate_connections_refused"],
                "ferrogate_connections_refused_total",
                **refused,
            )
            == 0
        )
        # Above it: the oldest idle connection is closed to make room for the third.
        third = server.request("GET", "/")
        assert third.status == 200
        assert first.is_closed_by_peer(5)
        assert wait_for_value(port, "ferrogate_connections_refused", 1, **refused) == 1
        second.close()
        first.close()


@pytest.mark.timeout(60)
def test_connections_ended_by_a_refusal_are_counted_by_reason(serve):
    port = serving.free_port()
    with serve("queue_time:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        listener = f"http://127.0.0.1:{server.port}"
        for _ in range(2):
            with server.connect() as conn:
                conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
                assert conn.read_response().status == 400
        assert server.get("/").status == 200
        found = wait_for_value(
            port, "ferrogate_connections_refused", 2, reason="request", listener=listener
        )
        assert found == 2
        samples = scrape(port)["ferrogate_connections_refused"]
        reasons = {s.labels["reason"] for s in samples}
        assert reasons == {"max_connections", "tls_handshake", "proxy_preamble", "request"}
        assert value(samples, "ferrogate_connections_refused_total") == 2
    proxied = serving.free_port()
    flags = ("--proxy-protocol", "--metrics-bind", f"127.0.0.1:{proxied}")
    with serve("queue_time:app", *flags) as server:
        with server.connect() as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # no PROXY preamble
            conn.read_until_close()
        found = wait_for_value(proxied, "ferrogate_connections_refused", 1, reason="proxy_preamble")
        assert found == 1


@pytest.mark.timeout(60)
def test_tls_handshakes_and_their_failures_are_counted_by_listener(serve, pki):
    port, plain, tls = serving.free_port(), serving.free_port(), serving.free_port()
    binds = [f"http://127.0.0.1:{plain}", f"https://127.0.0.1:{tls}"]
    flags = (*tls_flags(pki.server), "--metrics-bind", f"127.0.0.1:{port}")
    with serve("tls_app:app", *flags, binds=binds) as server:
        listener = f"https://127.0.0.1:{tls}"
        for _ in range(3):  # a new connection, and handshake, each
            resp = requests.get(f"https://localhost:{tls}/", verify=str(pki.ca.path))
            assert resp.status_code == 200
        assert requests.get(f"http://127.0.0.1:{plain}/").status_code == 200
        # A client that does not trust the server's CA aborts the handshake with an alert.
        with pytest.raises(ssl.SSLCertVerificationError):
            with socket.create_connection(("127.0.0.1", tls), timeout=5) as raw:
                ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")
        # Plain HTTP to the TLS port (answered 400), bytes that are not TLS, and a port check.
        with server.connect(bind=binds[1]) as conn:
            conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert conn.read_response().status == 400
        with server.connect(bind=binds[1]) as conn:
            conn.send(b"\x00\x01\x02\x03 hello\r\n")
            with contextlib.suppress(ConnectionResetError):  # closed with the bytes unread
                conn.read_until_close()
        # A port check: the kernel may never hand it over (TCP_DEFER_ACCEPT); if it does,
        # it is a "closed" failure and no refusal.
        with server.connect(bind=binds[1]):
            pass
        failures = "ferrogate_tls_handshake_failures"
        assert wait_for_value(port, failures, 1, listener=listener, reason="protocol") == 1
        assert wait_for_value(port, failures, 2, listener=listener, reason="not_tls") == 2
        metrics = scrape(port)
        handshakes = metrics["ferrogate_tls_handshakes"]
        assert {s.labels["listener"] for s in handshakes} == {listener}  # TLS listeners only
        assert value(handshakes, "ferrogate_tls_handshakes_total", listener=listener) == 3
        by_reason = {s.labels["reason"]: s.value for s in metrics[failures]}
        assert by_reason["protocol"] == 1 and by_reason["timeout"] == 0
        assert by_reason["closed"] in (0, 1)
        refused = metrics["ferrogate_connections_refused"]
        assert value(refused, "ferrogate_connections_refused_total", reason="tls_handshake") == 3
        assert (
            value(
                refused, "ferrogate_connections_refused_total", listener=f"http://127.0.0.1:{plain}"
            )
            == 0
        )


@pytest.mark.timeout(90)
def test_worker_restarts_count_a_stopped_worker_and_a_boot_failure(serve, tmp_path):
    port = serving.free_port()
    flag = tmp_path / "fail"
    env = {"BOOT_FAIL_FLAG": str(flag)}
    flags = ("--workers", "2", "--log-level", "debug", "--metrics-bind", f"127.0.0.1:{port}")
    with serve("boot_flag:app", *flags, env=env) as server:
        workers = server.wait_for_workers(2)
        # A worker stopped before it accepts died young, as far as the master can tell.
        for pid in workers:
            server.wait_for_log(rf"Worker {pid} accepts connections")
        # Stopped gracefully by someone else (ctl kill does this): replaced, but not a crash.
        os.kill(workers[0], signal.SIGTERM)
        workers = server.wait_for_workers(2, exclude=[workers[0]])

        def restarts() -> dict[str, float]:
            samples = scrape(port)["ferrogate_worker_restarts"]
            return {s.labels["cause"]: s.value for s in samples}

        assert restarts()["stopped"] == 1 and restarts()["died"] == 0
        # A worker killed while the app cannot be imported: died, then its replacement fails.
        flag.touch()
        os.kill(workers[0], signal.SIGKILL)
        server.wait_for_log(r"could not load the app \(the error is above\); the other workers")
        counted = restarts()
        assert counted["died"] == 1 and counted["boot_failed"] >= 1
        flag.unlink()
        server.wait_for_workers(2, timeout=30, exclude=[workers[0]])


@pytest.mark.timeout(60)
def test_http2_requests_and_their_body_bytes_are_counted(serve):
    port = serving.free_port()
    with serve("input_reader:app", "--metrics-bind", f"127.0.0.1:{port}") as server:
        base = f"http://127.0.0.1:{server.port}"
        with httpx.Client(http2=True, http1=False) as client:  # h2c, prior knowledge
            resp = client.post(f"{base}/digest", content=b"h" * 50_000)
            assert resp.http_version == "HTTP/2" and resp.json()["size"] == 50_000
            assert client.get(f"{base}/nothing").status_code == 200
        assert wait_for_value(port, "ferrogate_received_bytes", 50_000) == 50_000
        requests_total = scrape(port)["ferrogate_requests"]
        for method in ("POST", "GET"):
            found = value(requests_total, "ferrogate_requests_total", status="2xx", method=method)
            assert found == 1, method
