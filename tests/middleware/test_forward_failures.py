"""Forward when upstreams fail: 502 when none answers, 504 at the timeout, retries only
where they are safe, and a response cut off upstream cut off for the client too."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
import requests

from tests import serving
from tests.middleware.forward_peers import (
    ANY_SERVER_WAYS,
    PROXY_WAYS,
    RawUpstream,
    ferrogate_upstream,
    proxy,
)


def dead_url() -> str:
    return f"http://127.0.0.1:{serving.free_port()}"


@pytest.fixture(scope="module")
def live():
    with ferrogate_upstream("live") as server:
        yield server.url("")


@pytest.mark.parametrize("way", ANY_SERVER_WAYS)
def test_all_upstreams_down_is_502_with_a_short_body_and_one_log_line(way):
    with proxy(way, [dead_url(), dead_url()]) as p:
        response = requests.get(p.url("/proxy/a"))
        assert response.status_code == 502
        assert response.text == "502 Bad Gateway\n"
        if way in ("lifted", "python"):
            lines = serving.wait_for_text(p.log, r"Forward: GET /proxy/a: 502: .*refused")
            assert len(lines) == 1


@pytest.mark.parametrize("way", ANY_SERVER_WAYS)
def test_slow_upstream_is_504_at_the_timeout_and_others_are_unaffected(way, live):
    with proxy(way, [live], strip_prefix=True, timeout=1) as p:
        answers = {}

        def slow():
            start = time.monotonic()
            answers["slow"] = (requests.get(p.url("/proxy/slow?s=4")).status_code,
                               time.monotonic() - start)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.2)
        start = time.monotonic()
        assert requests.get(p.url("/proxy/echo")).status_code == 200
        assert time.monotonic() - start < 0.5
        thread.join()
        status, elapsed = answers["slow"]
        assert status == 504
        assert 0.9 < elapsed < 2.5, elapsed


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_refused_connection_moves_on_for_any_method(way, live):
    # Nothing was sent to a refusing upstream, so even a POST may go to the next one.
    with proxy(way, [dead_url(), live], strip_prefix=True, max_fails=100) as p:
        for method in ("GET", "POST") * 4:
            assert requests.request(method, p.url("/proxy/echo"), data=b"x").status_code == 200


@pytest.mark.parametrize("way", ANY_SERVER_WAYS)
def test_reset_after_sending_is_retried_only_for_idempotent_methods(way, live):
    raw = RawUpstream("reset")
    try:
        with proxy(way, [raw.url, live], strip_prefix=True, max_fails=100) as p:
            for _ in range(6):
                assert requests.get(p.url("/proxy/echo")).status_code == 200
                assert requests.put(p.url("/proxy/echo"), data=b"x").status_code == 200
            posts = [requests.post(p.url("/proxy/echo"), data=b"x").status_code
                     for _ in range(6)]
            # Round robin: every other POST meets the resetting upstream and is not resent
            # (gunicorn's two workers each keep their own turn: some of each, then).
            if way == "gunicorn":
                assert set(posts) == {200, 502}, posts
            else:
                assert sorted(posts) == [200, 200, 200, 502, 502, 502]
        with proxy(way, [raw.url, live], strip_prefix=True, max_fails=100,
                   retry_non_idempotent=True) as p:
            for _ in range(6):
                assert requests.post(p.url("/proxy/echo"), data=b"x").status_code == 200
    finally:
        raw.close()


# wsgiref answers HTTP/1.0 and ends a body without a length by closing: a cut-off chunked
# response cannot look different from a whole one there, so that case is ferrogate's only.
@pytest.mark.parametrize(("way", "chunked"), [
    ("lifted", False), ("lifted", True), ("python", False), ("python", True), ("wsgiref", False),
])
def test_upstream_dying_mid_response_aborts_the_client_connection(way, chunked):
    raw = RawUpstream("partial", chunked=chunked)
    try:
        with proxy(way, [raw.url]) as p:
            conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
            conn.request("GET", "/proxy/big")
            response = conn.getresponse()
            assert response.status == 200
            with pytest.raises(http.client.IncompleteRead):
                response.read()
            conn.close()
    finally:
        raw.close()


# A body declared at most buffered_response_bytes long (16 KiB by default) is read whole
# before the answer starts, so an upstream that breaks off one byte short is a 502; a longer
# one is streamed, its 200 already sent, and the client's connection is cut instead.
@pytest.mark.parametrize("way", ["lifted", "python"])
@pytest.mark.parametrize(("buffered", "promised", "status"), [
    (None, 16383, 502), (None, 16384, 502), (None, 16385, 200),
    (1000, 999, 502), (1000, 1000, 502), (1000, 1001, 200),
    (0, 2, 200),
])
def test_a_short_response_cut_off_upstream_is_502_and_a_longer_one_aborts(
    way, buffered, promised, status
):
    raw = RawUpstream("partial", promised=promised, sent=promised - 1)
    options = {} if buffered is None else {"buffered_response_bytes": buffered}
    try:
        with proxy(way, [raw.url], retries=0, **options) as p:
            conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
            conn.request("GET", "/proxy/short")
            response = conn.getresponse()
            assert response.status == status
            if status == 200:
                with pytest.raises(http.client.IncompleteRead):
                    response.read()
            else:
                response.read()
                assert "broke off" in p.log()
            conn.close()
    finally:
        raw.close()


def test_an_upstream_that_fails_is_taken_out_then_tried_again_after_fail_timeout(live):
    down = dead_url()
    with proxy("lifted", [down, live], strip_prefix=True, max_fails=2, fail_timeout=1) as p:
        for _ in range(6):
            assert requests.get(p.url("/proxy/echo")).status_code == 200
        serving.wait_for_text(p.log, rf"upstream {down} is out of rotation")
        mark = len(p.log())
        for _ in range(6):
            requests.get(p.url("/proxy/echo"))
        # Out: no request tried it, so nothing more was logged about it.
        assert down not in p.log()[mark:]
        time.sleep(1.2)
        for _ in range(4):
            assert requests.get(p.url("/proxy/echo")).status_code == 200
        assert down in p.log()[mark:]


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_a_slow_upload_is_not_a_timeout(way, live):
    # The timeout is the upstream's time to answer once it has the body, not the client's
    # time to send it.
    with proxy(way, [live], strip_prefix=True, timeout=1) as p:
        conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
        conn.putrequest("POST", "/proxy/echo")
        conn.putheader("Content-Length", str(4 * 100_000))
        conn.endheaders()
        for _ in range(4):
            conn.send(b"u" * 100_000)
            time.sleep(0.6)
        response = conn.getresponse()
        assert response.status == 200, response.read()
        assert b'"length": 400000' in response.read()
        conn.close()


@pytest.mark.parametrize("limit", [1, 2])
def test_max_connections_holds_requests_beyond_it_until_a_slot_frees(limit, live):
    """Three requests of 1 s at once: with one slot they run one after another, with two
    slots the third waits for one; the waits count in the timeout (3 s)."""
    with proxy("lifted", [live], strip_prefix=True, max_connections=limit, timeout=3) as p:
        ends = []

        def slow():
            start = time.monotonic()
            status = requests.get(p.url("/proxy/slow?s=1")).status_code
            ends.append((status, time.monotonic() - start))

        threads = [threading.Thread(target=slow) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [status for status, _ in ends] == [200, 200, 200]
        longest = max(elapsed for _, elapsed in ends)
        expected = 3 if limit == 1 else 2
        assert expected - 0.2 < longest < expected + 0.9, ends
