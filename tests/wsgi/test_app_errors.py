"""What an app exception or a non-bytes body item turns into (apps/failing.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(serve):
    with serve("failing:app") as s:
        yield s


@pytest.fixture(scope="module")
def debug_server(serve):
    with serve("failing:app", "--debug") as s:
        yield s


def assert_serving(server) -> None:
    resp = server.get("/")
    assert resp.status == 200
    assert int(resp.text) in server.worker_pids()


def test_exception_before_headers_is_plain_500(server):
    resp = server.get("/raise-before-headers")
    assert resp.status == 500
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    assert "Internal Server Error" in resp.text
    assert len(resp.body) < 200
    assert "boom before headers" not in resp.text and "Traceback" not in resp.text


def test_exception_before_headers_logs_traceback(server):
    mark = server.log_mark()
    server.get("/raise-before-headers")
    server.wait_for_log(r"^Traceback \(most recent call last\):", since=mark)
    server.wait_for_log(r"RuntimeError: boom before headers 9d2e", since=mark)
    assert_serving(server)


def test_debug_puts_traceback_in_500_body(debug_server):
    resp = debug_server.get("/raise-before-headers")
    assert resp.status == 500
    assert "Traceback" in resp.text
    assert "RuntimeError: boom before headers 9d2e" in resp.text


def test_exception_after_headers_aborts_chunked_response(server):
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send_request("GET", "/raise-after-headers")
        head = conn.read_head()
        rest = conn.read_until_close()  # the connection must be closed, not left waiting
    assert head.status == 200
    assert (head.header("Transfer-Encoding") or "").lower() == "chunked"
    assert b"first part, " in rest
    assert not rest.endswith(b"0\r\n\r\n"), "the final chunk would make the response look complete"
    server.wait_for_log(r"RuntimeError: boom after headers 41ab", since=mark)
    server.wait_for_log(r"^Traceback \(most recent call last\):", since=mark)
    assert_serving(server)


def test_str_body_item_is_500_with_one_log_line(server):
    mark = server.log_mark()
    resp = server.get("/str-body")
    assert resp.status == 500
    assert "Internal Server Error" in resp.text
    (match,) = server.wait_for_log(r"^.*must be bytes.*$", since=mark)
    assert "str" in match.group(0)
    assert server.log_since(mark).count("must be bytes") == 1
    assert_serving(server)


def test_str_chunk_after_headers_aborts_connection(server):
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send_request("GET", "/str-chunk-later")
        head = conn.read_head()
        rest = conn.read_until_close()
    assert head.status == 200
    assert not rest.endswith(b"0\r\n\r\n")
    server.wait_for_log(r"must be bytes", since=mark)
    assert_serving(server)


def test_worker_is_not_replaced_after_app_errors(server):
    before = server.worker_pids()
    for path in ("/raise-before-headers", "/str-body", "/raise-before-headers"):
        assert server.get(path).status == 500
    assert server.worker_pids() == before
