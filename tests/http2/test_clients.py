"""HTTP/2 with real clients: curl (prior knowledge), httpx (http2=True), nghttp, and the raw
h2 package; each stream is one WSGI request with SERVER_PROTOCOL "HTTP/2"."""

from __future__ import annotations

import hashlib
import re
import subprocess
import threading
import time

import httpx
import pytest

from tests import serving
from tests.http2.h2raw import H2Client

APP = "h2_edges:app"


@pytest.fixture(scope="module")
def server():
    with serving.serve(APP, "--threads", "16") as server:
        yield server


def environ_of(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_curl_prior_knowledge_gets_an_http2_response(server):
    out = subprocess.run(
        ["curl", "-sS", "-i", "--http2-prior-knowledge", server.url("/env/a%20b?x=1&y=2")],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout.decode()
    head, _, body = out.partition("\r\n\r\n")
    assert head.startswith("HTTP/2 200")
    lines = head.lower().splitlines()
    assert "server: ferrogate" in lines
    assert "x-mixed-case: kept" in lines
    assert not any(line.startswith("connection:") for line in lines)
    assert any(line.startswith("date: ") for line in lines)
    environ = environ_of(body)
    assert environ["SERVER_PROTOCOL"] == "HTTP/2"
    assert environ["PATH_INFO"] == "/env/a b"
    assert environ["QUERY_STRING"] == "x=1&y=2"
    assert environ["HTTP_HOST"] == server.url("/").split("/")[2]
    assert environ["wsgi.url_scheme"] == "http"


def test_httpx_http2_environ_and_cookie_crumbs_joined():
    with serving.serve(APP) as server, httpx.Client(http2=True, http1=False) as client:
        response = client.get(server.url("/env"), headers={"cookie": "a=1; b=2"})
        assert response.http_version == "HTTP/2"
        environ = environ_of(response.text)
        assert environ["SERVER_PROTOCOL"] == "HTTP/2"
        assert environ["REQUEST_METHOD"] == "GET"
        assert environ["HTTP_COOKIE"] == "a=1; b=2"


def test_cookie_crumbs_in_separate_fields_are_joined_with_semicolons(server):
    client = H2Client(server.port)
    try:
        stream = client.request("/env", extra=[("cookie", "a=1"), ("cookie", "b=2")])
        headers, body = client.response(stream)
        assert headers[":status"] == "200"
        assert environ_of(body.decode())["HTTP_COOKIE"] == "a=1; b=2"
    finally:
        client.close()


def test_nghttp_fetches_over_h2c(server):
    out = subprocess.run(
        ["nghttp", "-v", server.url("/env")],
        capture_output=True,
        check=True,
        timeout=10,
    ).stdout.decode()
    assert ":status: 200" in out
    assert "SERVER_PROTOCOL=HTTP/2" in out


def test_http1_still_served_on_the_same_port(server):
    response = httpx.get(server.url("/env"))
    assert response.http_version == "HTTP/1.1"
    assert environ_of(response.text)["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_upgrade_h2c_is_not_offered(server):
    response = httpx.get(
        server.url("/env"),
        headers={
            "Connection": "Upgrade, HTTP2-Settings",
            "Upgrade": "h2c",
            "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
        },
    )
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"


def test_streams_of_one_connection_run_concurrently(server):
    client = H2Client(server.port)
    try:
        started = time.monotonic()
        streams = [client.request("/slow?0.5") for _ in range(8)]
        for stream in streams:
            headers, body = client.response(stream)
            assert (headers[":status"], body) == ("200", b"slept")
        assert time.monotonic() - started < 2.0  # one after another: 4 s
    finally:
        client.close()


def test_one_mib_download_streamed_and_as_a_file(server):
    with httpx.Client(http2=True, http1=False) as client:
        streamed = client.get(server.url("/big?1048576"), timeout=30)
        assert streamed.http_version == "HTTP/2"
        assert streamed.content == b"y" * 1048576
        filed = client.get(server.url("/file?1048576"), timeout=30)
        assert filed.headers["content-length"] == "1048576"
        assert filed.content == b"f" * 1048576


def test_one_mib_upload_is_read_by_the_app(server):
    data = bytes(range(256)) * 4096
    with httpx.Client(http2=True, http1=False) as client:
        response = client.post(server.url("/upload"), content=data, timeout=30)
    assert response.text == f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def test_big_upload_costs_a_few_mib_of_worker_memory(server):
    """64 MiB streamed up: the window opens as the app reads, so the worker never holds it."""
    worker = server.worker_pids()[0]
    before = serving.proc_status_kib(worker, "VmHWM")
    total = 64 * 1024 * 1024
    piece = b"z" * 65536

    def pieces():
        for _ in range(total // len(piece)):
            yield piece

    with httpx.Client(http2=True, http1=False) as client:
        response = client.post(server.url("/upload"), content=pieces(), timeout=60)
    assert response.text.startswith(f"{total} ")
    grown = serving.proc_status_kib(worker, "VmHWM") - before
    assert grown < 24 * 1024, f"peak RSS grew {grown} KiB for a 64 MiB upload"


def test_concurrent_httpx_requests_share_one_connection(server):
    results = []

    def fetch(client):
        results.append(client.get(server.url("/slow?0.3")).text)

    # httpx's default 5 s timeout (which a thread's failure would leave unreported but for
    # the missing result) is too short for six streams on a loaded machine.
    with httpx.Client(http2=True, http1=False, timeout=30) as client:
        client.get(server.url("/env"))
        threads = [threading.Thread(target=fetch, args=(client,)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == ["slept"] * 6


def test_http_1_setting_refuses_the_preface():
    with serving.serve(APP, "--http", "1") as server:
        done = subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", server.url("/env")],
            capture_output=True,
            timeout=10,
        )
        assert done.returncode != 0
        assert httpx.get(server.url("/env")).status_code == 200


def test_http_2_setting_serves_only_http2():
    with serving.serve(APP, "--http", "2") as server:
        out = subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", server.url("/env")],
            capture_output=True,
            check=True,
            timeout=10,
        ).stdout.decode()
        assert "SERVER_PROTOCOL=HTTP/2" in out
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.url("/env"), timeout=5)


def test_access_log_names_http2():
    with serving.serve(APP, "--access-log", "-") as server:
        subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", server.url("/env?q=1")],
            capture_output=True,
            check=True,
            timeout=10,
        )
        serving.wait_for_text(server.stdout, r'"GET /env\?q=1 HTTP/2.0" 200 \d+')


def test_the_access_log_over_http2_has_the_queue_time_and_response_headers():
    fmt = '%(r)s %(s)s Q=%(Q)s type=%({content-type}o)s'
    with serving.serve(APP, "--access-log", "-", "--access-log-format", fmt) as server:
        subprocess.run(
            ["curl", "-sS", "--http2-prior-knowledge", server.url("/env")],
            capture_output=True,
            check=True,
            timeout=10,
        )
        line = serving.wait_for_text(
            server.stdout, r"GET /env HTTP/2.0 200 Q=\S+ type=\S+"
        )[0].group(0)
        # A Python thread answered: its wait is a number of milliseconds, not "-".
        assert re.search(r"Q=\d+(\.\d+)? type=text/plain", line), line
