"""How a WSGI response is framed: Content-Length kept, added or enforced, chunked, or close
(apps/framing.py, deliberately not behind the validator)."""

from __future__ import annotations

import re
import time

import pytest


@pytest.fixture(scope="module")
def server(serve):
    with serve("framing:app") as s:
        yield s


def test_one_element_list_without_length_gets_content_length(server):
    with server.connect() as conn:
        conn.send_request("GET", "/list")
        resp = conn.read_response()
    assert resp.header("Content-Length") == str(len(b"exactly one item"))
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"exactly one item"


def test_head_of_one_element_list_has_same_length_and_no_body(server):
    with server.connect() as conn:
        conn.send_request("HEAD", "/list")
        head = conn.read_response(method="HEAD")
        conn.send_request("GET", "/")
        after = conn.read_response()
    assert head.header("Content-Length") == str(len(b"exactly one item"))
    assert after.body == b"ok"


def test_http10_keep_alive_with_one_element_list_gets_length_and_stays_open(server):
    with server.connect() as conn:
        conn.send(b"GET /list HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = conn.read_response()
        assert first.header("Content-Length") == str(len(b"exactly one item"))
        assert first.body == b"exactly one item"
        conn.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert conn.read_response().body == b"ok"


def test_head_waits_for_first_non_empty_chunk(server):
    with server.connect() as conn:
        started = time.monotonic()
        conn.send_request("GET", "/late")
        head = conn.read_head()
        head_after = time.monotonic() - started
        resp = conn.read_body(head)
    assert resp.status == 200
    assert head_after >= 0.8, f"head sent after {head_after:.2f}s, before the first data"
    assert resp.body == b"finally some data"


def test_generator_without_length_is_chunked_on_http11(server):
    with server.connect() as conn:
        conn.send_request("GET", "/gen")
        resp = conn.read_response()
        assert resp.header("Content-Length") is None
        assert (resp.header("Transfer-Encoding") or "").lower() == "chunked"
        assert resp.body == b"alpha-beta-gamma"
        assert resp.raw_body.endswith(b"0\r\n\r\n")
        conn.send_request("GET", "/")  # still usable after the last chunk
        assert conn.read_response().body == b"ok"


def test_generator_without_length_closes_connection_on_http10(server):
    with server.connect() as conn:
        conn.send(b"GET /gen HTTP/1.0\r\n\r\n")
        resp = conn.read_head()
        assert resp.header("Transfer-Encoding") is None
        assert resp.header("Content-Length") is None
        assert conn.read_until_close() == b"alpha-beta-gamma"


def test_generator_on_http10_keep_alive_still_ends_by_close(server):
    with server.connect() as conn:
        conn.send(b"GET /gen HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        resp = conn.read_head()
        assert resp.header("Transfer-Encoding") is None  # HTTP/1.0 has no chunked coding
        assert conn.read_until_close() == b"alpha-beta-gamma"


#: A framing error must close the connection at once, not at the keep-alive timeout.
PROMPT_CLOSE_S = 3


def fetch_until_close(server, path: str) -> bytes:
    """Every byte the server sends for ``path`` before it closes the connection."""
    with server.connect(timeout=PROMPT_CLOSE_S) as conn:
        conn.send_request("GET", path)
        return conn.read_until_close()  # fails if the connection is still open after 3 s


def split_response(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


def test_body_shorter_than_content_length_closes_connection_and_logs(server):
    mark = server.log_mark()
    raw = fetch_until_close(server, "/short")
    # Either nothing was sent, or the head and fewer than the 10 declared bytes: never a
    # response that looks complete.
    if raw:
        _status, headers, body = split_response(raw)
        assert headers["Content-Length"] == "10"
        assert len(body) < 10 and b"01234".startswith(body)
    server.wait_for_log(r"\[ERROR\]", since=mark)


def test_body_longer_than_content_length_closes_connection_and_logs(server):
    mark = server.log_mark()
    raw = fetch_until_close(server, "/long")
    if raw:
        _status, headers, body = split_response(raw)
        assert headers["Content-Length"] == "5"
        assert b"01234".startswith(body), "bytes past Content-Length would be a wrong frame"
    server.wait_for_log(r"\[ERROR\]", since=mark)


def test_server_keeps_serving_after_framing_errors(server):
    for path in ("/short", "/long"):
        with server.connect(timeout=10) as conn:
            conn.send_request("GET", path, close=True)
            conn.read_until_close()
    resp = server.get("/")
    assert (resp.status, resp.body) == (200, b"ok")
    assert not re.search(r"panick", server.log(), re.IGNORECASE)
