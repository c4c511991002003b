"""HTTP/1.0 and 1.1 on the wire: keep-alive, pipelining, chunked bodies, 100-continue, HEAD,
Date and Server. Exact bytes in, parsed bytes out (apps/basic.py)."""

from __future__ import annotations

import email.utils
import time
from datetime import datetime, timezone

import pytest

from tests.rawhttp import build_request, chunked


@pytest.fixture(scope="module")
def server(serve):
    with serve("basic:app") as s:
        yield s


def test_http11_connection_stays_open_for_a_second_request(server):
    with server.connect() as conn:
        conn.send_request("GET", "/n/first")
        first = conn.read_response()
        conn.send_request("GET", "/n/second")
        second = conn.read_response()
    assert (first.status, first.body) == (200, b"first")
    assert (second.status, second.body) == (200, b"second")
    assert (first.header("Connection") or "").lower() != "close"


def test_http11_connection_close_is_honoured(server):
    with server.connect() as conn:
        conn.send_request("GET", "/", close=True)
        resp = conn.read_response()
        assert resp.status == 200
        assert conn.is_closed_by_peer(timeout=5)


def test_http10_request_is_answered_and_connection_closed(server):
    with server.connect() as conn:
        conn.send(b"GET /n/old HTTP/1.0\r\n\r\n")
        resp = conn.read_response()
        assert (resp.status, resp.body) == (200, b"old")
        assert conn.is_closed_by_peer(timeout=5)


def test_http10_keep_alive_when_client_asks_for_it(server):
    with server.connect() as conn:
        conn.send(b"GET /n/one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = conn.read_response()
        assert first.body == b"one"
        assert (first.header("Connection") or "").lower() == "keep-alive"
        assert not conn.is_closed_by_peer(timeout=0.5)
        conn.send(b"GET /n/two HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        second = conn.read_response()
        assert (second.status, second.body) == (200, b"two")


def test_pipelined_requests_are_answered_in_order(server):
    names = [f"req{i}" for i in range(5)]
    payload = b"".join(build_request("GET", f"/n/{name}") for name in names)
    payload += build_request("POST", "/echo", body=b"posted-in-the-pipe")
    payload += build_request("GET", "/n/last", close=True)
    with server.connect() as conn:
        conn.send(payload)  # all requests in one write
        bodies = [conn.read_response(method="GET").body for _ in range(len(names) + 2)]
    assert bodies == [n.encode() for n in names] + [b"posted-in-the-pipe", b"last"]


def test_chunked_request_body_reaches_app_decoded(server):
    body = chunked(b"hello ", b"chunked ", b"x" * 5000, b" world")
    with server.connect() as conn:
        conn.send_request("POST", "/echo", body=body, headers={"Transfer-Encoding": "chunked"})
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"hello chunked " + b"x" * 5000 + b" world"


def test_chunked_request_with_extensions_and_trailers_is_decoded(server):
    body = b"5;name=value\r\nabcde\r\n3\r\nfgh\r\n0\r\nX-Trailer: yes\r\n\r\n"
    with server.connect() as conn:
        conn.send_request("POST", "/echo", body=body, headers={"Transfer-Encoding": "chunked"})
        resp = conn.read_response()
        assert (resp.status, resp.body) == (200, b"abcdefgh")
        # The connection is still in sync after the trailers.
        conn.send_request("GET", "/n/after")
        assert conn.read_response().body == b"after"


def test_expect_100_continue_is_answered_before_the_body_is_sent(server):
    body = b"the body, sent only after 100 Continue"
    with server.connect(timeout=5) as conn:
        conn.send(
            build_request(
                "POST",
                "/echo",
                headers={"Expect": "100-continue", "Content-Length": str(len(body))},
            )
        )
        interim = conn.read_response()  # fails on timeout if the server waits for the body
        assert interim.status == 100
        conn.send(body)
        final = conn.read_response()
    assert (final.status, final.body) == (200, body)


def test_head_returns_get_headers_without_body(server):
    with server.connect() as conn:
        conn.send_request("GET", "/")
        get = conn.read_response()
        conn.send_request("HEAD", "/")
        head = conn.read_response(method="HEAD")
        # If the HEAD response carried a body, it would be read as the next response.
        conn.send_request("GET", "/n/next")
        after = conn.read_response()
    assert head.status == get.status == 200
    for name in ("Content-Type", "Content-Length", "X-Route", "Server"):
        assert head.header(name) == get.header(name), name
    assert head.header("Content-Length") == str(len(get.body))
    assert after.body == b"next"


def test_head_of_streamed_response_has_no_body(server):
    with server.connect() as conn:
        conn.send_request("HEAD", "/chunks")
        head = conn.read_response(method="HEAD")
        conn.send_request("GET", "/n/next")
        after = conn.read_response()
    assert head.status == 200
    assert after.status == 200 and after.body == b"next"


def test_responses_carry_date_and_server_headers(server):
    resp = server.get("/")
    assert resp.header("Server") == "ferrogate"
    date = resp.header("Date")
    assert date and date.endswith(" GMT"), date
    sent = email.utils.parsedate_to_datetime(date)
    assert abs((datetime.now(timezone.utc) - sent).total_seconds()) < 60


def test_date_header_advances_with_time(server):
    first = email.utils.parsedate_to_datetime(server.get("/").header("Date"))
    time.sleep(1.1)
    second = email.utils.parsedate_to_datetime(server.get("/").header("Date"))
    assert second > first


def test_app_server_header_wins_over_the_default(server):
    resp = server.get("/own-server")
    assert resp.header_values("Server") == ["custom/1.0"]


def test_header_names_go_out_in_the_case_the_app_gave(server):
    # Like gunicorn and waitress: names are case-insensitive, but some clients are not.
    resp = server.get("/cased")
    names = [name for name, _ in resp.headers]
    assert {"content-type", "X-UPPER", "x-Mixed-case"} <= set(names), names
    assert resp.body == b"cased"


def test_app_content_length_is_sent_as_given(server):
    resp = server.get("/")
    assert resp.header("Content-Length") == "13"
    assert resp.header("Transfer-Encoding") is None
    assert resp.body == b"Hello, world!"


def test_generator_body_is_chunked_on_http11(server):
    with server.connect() as conn:
        conn.send_request("GET", "/chunks")
        resp = conn.read_response()
    assert resp.chunked
    assert resp.header("Content-Length") is None
    assert resp.body == b"onetwothree"
    assert resp.raw_body.endswith(b"0\r\n\r\n")
