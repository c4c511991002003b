"""start_response: argument checks (-> 500, worker survives), second calls, exc_info, write()
(apps/start_response_cases.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def server(serve):
    with serve("start_response_cases:app") as s:
        yield s


@pytest.fixture(scope="module")
def worker_pid(server):
    (pid,) = server.wait_for_workers(1)
    return pid


def assert_internal_error(resp) -> None:
    assert resp.status == 500, (resp.status, resp.text)
    assert (resp.header("Content-Type") or "").startswith("text/plain")
    assert "Internal Server Error" in resp.text
    assert "X-Injected" not in [name for name, _ in resp.headers]
    assert "the bad call was accepted" not in resp.text


def assert_worker_survived(server, worker_pid) -> None:
    resp = server.get("/pid")
    assert (resp.status, resp.text) == (200, str(worker_pid))
    assert server.worker_pids() == [worker_pid]


@pytest.mark.parametrize(
    "case",
    [
        "status-int",
        "status-bytes",
        "status-no-reason",
        "status-two-digits",
        "status-not-a-number",
        "status-crlf",
    ],
)
def test_malformed_status_is_500_and_worker_survives(server, worker_pid, case):
    mark = server.log_mark()
    assert_internal_error(server.get(f"/{case}"))
    assert_worker_survived(server, worker_pid)
    server.wait_for_log(r"TypeError|ValueError", since=mark)


@pytest.mark.parametrize(
    "case",
    [
        "headers-tuple",
        "header-is-list",
        "header-bytes",
        "header-value-int",
        "header-crlf",
        "header-lf-in-name",
        "header-nul",
    ],
)
def test_malformed_headers_are_500_and_worker_survives(server, worker_pid, case):
    mark = server.log_mark()
    assert_internal_error(server.get(f"/{case}"))
    assert_worker_survived(server, worker_pid)
    server.wait_for_log(r"TypeError|ValueError", since=mark)


@pytest.mark.parametrize("header", ["connection", "keep-alive", "transfer-encoding", "upgrade"])
def test_hop_by_hop_header_from_app_is_500(server, worker_pid, header):
    mark = server.log_mark()
    assert_internal_error(server.get(f"/hop-{header}"))
    assert_worker_survived(server, worker_pid)
    server.wait_for_log(r"(?i)hop.by.hop", since=mark)


def test_second_call_without_exc_info_raises(server):
    resp = server.get("/second-call-raises")
    assert resp.status == 200
    assert resp.text.startswith("raised "), resp.text


def test_exc_info_before_headers_sent_replaces_pending_status(server):
    resp = server.get("/exc-info-replaces-pending-status")
    assert resp.status == 503
    assert resp.body == b"replaced"
    assert resp.header("X-First") is None
    assert resp.header("X-Second") == "yes"


def test_exc_info_after_headers_sent_reraises_and_aborts(server, worker_pid):
    mark = server.log_mark()
    with server.connect() as conn:
        conn.send_request("GET", "/exc-info-after-headers-reraises")
        head = conn.read_head()
        rest = conn.read_until_close()
    assert head.status == 200
    assert b"partial " in rest
    assert not rest.endswith(b"0\r\n\r\n"), "an aborted response must not look complete"
    server.wait_for_log(r"EXC-INFO-RERAISED same", since=mark)
    server.wait_for_log(r"original error 5f1c", since=mark)
    assert "EXC-INFO-NOT-RERAISED" not in server.log_since(mark)
    assert_worker_survived(server, worker_pid)


def test_write_callable_sends_body(server):
    resp = server.get("/write-callable")
    assert (resp.status, resp.body) == (200, b"hello world")


def test_write_callable_output_precedes_iterable(server):
    resp = server.get("/write-then-iterable")
    assert (resp.status, resp.body) == (200, b"from write, from iterable")


def test_headers_wait_for_first_non_empty_chunk(server, worker_pid):
    mark = server.log_mark()
    assert_internal_error(server.get("/empty-chunk-then-error"))
    server.wait_for_log(r"failed after an empty chunk", since=mark)
    assert_worker_survived(server, worker_pid)


def test_app_returning_without_start_response_is_500(server, worker_pid):
    assert_internal_error(server.get("/no-start-response"))
    assert_worker_survived(server, worker_pid)
