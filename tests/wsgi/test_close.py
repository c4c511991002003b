"""close() of the response iterable is called exactly once: at the normal end, after an
exception, and when the client disconnects mid-response (apps/closing.py)."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.serving import wait_for_text

#: After the first close() shows up, how long to keep watching for a second one.
SECOND_CLOSE_GRACE_S = 0.5


@pytest.fixture(scope="module")
def server(serve, close_log):
    with serve("closing:app", "--threads", "2", env={"CLOSE_LOG": str(close_log)}) as s:
        yield s


def close_count(close_log, tag: str, timeout: float = 10.0) -> int:
    """How often close() ran for ``tag``: waits for the first, then for a possible second."""
    wait_for_text(close_log.read_text, rf"^{tag}$", timeout)
    time.sleep(SECOND_CLOSE_GRACE_S)
    return close_log.read_text().split().count(tag)


def new_tag() -> str:
    return uuid.uuid4().hex


def test_close_called_once_after_normal_end(server, close_log):
    tag = new_tag()
    resp = server.get(f"/normal?{tag}")
    assert (resp.status, resp.body) == (200, b"first second")
    assert close_count(close_log, tag) == 1


def test_close_called_once_after_exception_midway(server, close_log):
    tag = new_tag()
    with server.connect() as conn:
        conn.send_request("GET", f"/raise-midway?{tag}")
        conn.read_head()
        conn.read_until_close()
    assert close_count(close_log, tag) == 1


def test_close_called_once_after_exception_before_first_chunk(server, close_log):
    tag = new_tag()
    assert server.get(f"/raise-first?{tag}").status == 500
    assert close_count(close_log, tag) == 1


def test_close_called_once_when_client_disconnects_mid_response(server, close_log):
    tag = new_tag()
    conn = server.connect()
    conn.send_request("GET", f"/endless?{tag}")
    conn.read_head()
    conn.sock.recv(65536)
    conn.close()  # gone while the app still has endless chunks to give
    assert close_count(close_log, tag, timeout=15) == 1


def test_close_called_once_for_each_keep_alive_request(server, close_log):
    tags = [new_tag() for _ in range(3)]
    with server.connect() as conn:
        for tag in tags:
            conn.send_request("GET", f"/normal?{tag}")
            assert conn.read_response().body == b"first second"
    for tag in tags:
        assert close_count(close_log, tag) == 1


def test_file_wrapper_closes_the_file_like_object_once(server, close_log):
    tag = new_tag()
    resp = server.get(f"/file-wrapper?{tag}")
    assert (resp.status, resp.body) == (200, b"file-like content")
    assert close_count(close_log, tag) == 1
