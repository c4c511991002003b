"""Forward: a reverse proxy to real upstream servers (ferrogate on TCP and on a Unix socket,
gunicorn), served three ways (lifted, --no-native-middleware, wsgiref calling the object):
bodies streamed both ways, headers rewritten, and the same answers either way."""

from __future__ import annotations

import hashlib
import http.client
import json
import os

import pytest
import requests

from tests import serving
from tests.apps.upstream import pattern
from tests.middleware.forward_peers import (
    ANY_SERVER_WAYS,
    PROXY_WAYS,
    RawUpstream,
    ferrogate_upstream,
    gunicorn_upstream,
    proxy,
)


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory):
    """Upstreams: ferrogate a and b on TCP, ferrogate u on a Unix socket, gunicorn g, and
    ferrogate n that trusts no proxy (so its environ shows the headers as received)."""
    sock = tmp_path_factory.mktemp("forward") / "u.sock"
    with (
        ferrogate_upstream("a") as a,
        ferrogate_upstream("b") as b,
        ferrogate_upstream("n", "--forwarded-allow-ips", "10.9.9.9") as n,
        ferrogate_upstream("u", bind=f"unix:{sock}"),
        gunicorn_upstream("g") as g,
    ):
        yield {"a": a.url(""), "b": b.url(""), "n": n.url(""), "u": f"unix:{sock}", "g": g}


def echo(url: str, **kwargs) -> dict:
    response = requests.post(url, **kwargs) if "data" in kwargs else requests.get(url, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("way", ANY_SERVER_WAYS)
@pytest.mark.parametrize("name", ["a", "u", "g"])
def test_get_and_post_reach_each_kind_of_upstream(way, name, upstreams):
    with proxy(way, [upstreams[name]], strip_prefix=True) as p:
        got = echo(p.url("/proxy/echo/x%20y?q=1&r=2"))
        assert (got["name"], got["method"], got["path"], got["query"]) == (
            name, "GET", "/echo/x y", "q=1&r=2")
        body = os.urandom(300_000)
        got = echo(p.url("/proxy/echo"), data=body, headers={"Content-Type": "app/x"})
        assert (got["method"], got["length"], got["sha256"]) == ("POST", len(body), sha(body))
        assert got["content_type"] == "app/x"
        # The app behind the mount still answers the rest.
        assert requests.get(p.url("/elsewhere")).text == "site\n"


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_prefix_is_kept_without_strip_prefix_and_the_base_is_prepended(way, upstreams):
    with proxy(way, [upstreams["a"] + "/base"]) as p:
        assert echo(p.url("/proxy/echo?x=1"))["path"] == "/base/proxy/echo"


@pytest.mark.parametrize("way", ANY_SERVER_WAYS)
def test_downloads_stream_with_and_without_content_length(way, upstreams):
    n = 5 * 1024 * 1024 + 17
    expected = sha(b"".join(pattern(n)))
    with proxy(way, [upstreams["a"]], strip_prefix=True) as p:
        for length in ("", "&length=0"):
            response = requests.get(p.url(f"/proxy/bytes?n={n}{length}"), stream=True)
            assert response.status_code == 200
            assert response.headers.get("Content-Length") == (None if length else str(n))
            digest = hashlib.sha256()
            for piece in response.iter_content(65536):
                digest.update(piece)
            assert digest.hexdigest() == expected


@pytest.mark.parametrize("way", ["lifted", "python"])
def test_chunked_upload_is_reframed(way, upstreams):
    pieces = [os.urandom(40_000) for _ in range(5)]
    with proxy(way, [upstreams["a"]], strip_prefix=True) as p:
        got = echo(p.url("/proxy/echo"), data=iter(pieces))
        assert (got["length"], got["sha256"]) == (200_000, sha(b"".join(pieces)))
        assert "transfer-encoding" in got["headers"] or got["length"] == 200_000


# wsgiref never sends 100 Continue (a server's job, not the app's): ferrogate only.
@pytest.mark.parametrize("way", ["lifted", "python"])
def test_expect_100_continue_is_answered_and_the_body_forwarded(way, upstreams):
    body = os.urandom(100_000)
    with proxy(way, [upstreams["a"]], strip_prefix=True) as p:
        with serving.RawConnection((p.host, p.port)) as conn:
            conn.send(
                b"POST /proxy/echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n" % len(body)
            )
            head = conn.read_head()
            if head.status == 100:
                conn.send(body)
                head = conn.read_head()
            else:
                pytest.fail(f"no 100 Continue, got {head.status}")
            response = conn.read_body(head)
            got = json.loads(response.body)
            assert (got["length"], got["sha256"]) == (len(body), sha(body))


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_head_and_304_have_no_body(way, upstreams):
    with proxy(way, [upstreams["a"]], strip_prefix=True) as p:
        conn = http.client.HTTPConnection(p.host, p.port, timeout=10)
        conn.request("HEAD", "/proxy/bytes?n=1000")
        response = conn.getresponse()
        assert (response.status, response.getheader("Content-Length")) == (200, "1000")
        assert response.read() == b""
        conn.close()
        response = requests.get(p.url("/proxy/etag"), headers={"If-None-Match": '"v1"'})
        assert (response.status_code, response.content) == (304, b"")
        assert response.headers["ETag"] == '"v1"'


@pytest.mark.parametrize("way", PROXY_WAYS)
@pytest.mark.parametrize("trusted", [True, False])
def test_forwarded_headers_end_with_the_client_and_host_is_rewritten(way, trusted, upstreams):
    # From a trusted peer (127.0.0.1 is by default), ferrogate resolves the client to
    # 203.0.113.7: the chain already ends with it. Untrusted, or under wsgiref (which trusts
    # nobody), the peer's own address is appended.
    flags = [] if trusted else ["--forwarded-allow-ips", "10.9.9.9"]
    client = "203.0.113.7" if trusted and way != "wsgiref" else "127.0.0.1"
    with proxy(way, [upstreams["n"]], *flags, strip_prefix=True) as p:
        got = echo(p.url("/proxy/echo"), headers={
            "Host": "shop.example:8443", "X-Forwarded-For": "203.0.113.7",
            "Connection": "X-Drop-Me", "X-Drop-Me": "1", "X-Kept": "2",
        })["headers"]
        chain = "203.0.113.7" if client == "203.0.113.7" else "203.0.113.7, 127.0.0.1"
        assert got["x-forwarded-for"] == chain
        assert got["x-forwarded-proto"] == "http"
        assert got["x-forwarded-host"] == "shop.example:8443"
        assert got["forwarded"] == f'for={client};proto=http;host="shop.example:8443"'
        assert got["host"] == upstreams["n"].removeprefix("http://")
        assert "x-drop-me" not in got and got["x-kept"] == "2"


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_host_is_preserved_and_via_added_when_asked(way, upstreams):
    with proxy(way, [upstreams["n"]], strip_prefix=True, preserve_host=True, via=True) as p:
        got = echo(p.url("/proxy/echo"), headers={"Host": "shop.example"})["headers"]
        assert (got["host"], got["via"]) == ("shop.example", "1.1 ferrogate")


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_hop_by_hop_response_fields_are_removed_server_and_date_kept(way):
    raw = RawUpstream("hop")
    try:
        with proxy(way, [raw.url]) as p:
            response = requests.get(p.url("/proxy/x"))
            assert response.text == "hop\n"
            headers = response.headers
            assert "X-Private" not in headers and "Keep-Alive" not in headers
            assert headers["X-Public"] == "shown"
            if way != "wsgiref":  # wsgiref writes its own Server and Date
                assert headers["Server"] == "rawup/1"
                assert headers["Date"] == "Mon, 01 Jan 2024 00:00:00 GMT"
    finally:
        raw.close()


@pytest.mark.parametrize("preserve_host", [False, True])
def test_an_http10_client_without_host_still_reaches_the_upstream(preserve_host, upstreams):
    with proxy("lifted", [upstreams["n"]], strip_prefix=True, preserve_host=preserve_host) as p:
        with serving.RawConnection((p.host, p.port)) as conn:
            conn.send(b"GET /proxy/echo HTTP/1.0\r\n\r\n")
            response = conn.read_response()
            assert response.status == 200, response.body
            got = json.loads(response.body)["headers"]
            assert got["host"] == upstreams["n"].removeprefix("http://")
            assert "x-forwarded-host" not in got
