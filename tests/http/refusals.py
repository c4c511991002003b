"""Shared helpers for the strict-parsing and limits tests: refused requests and served ones.

A refused request gets one response with the expected status (text/plain), then the server
closes the connection, does not call the app, and logs ONE line
``[WARNING] <status> from 127.0.0.1:<client port>: <reason>``. The refusal log lines are
rate-limited (20 per second per worker), so ``assert_refused`` spaces refusals out.

Servers made with ``recorded_server`` run apps/call_log.py (basic.py that records every call
in a file), so "the app was not called" can be checked from outside.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.rawhttp import IncompleteResponse, Response

#: The warning logged once per refused request (any status, any client port).
REJECTED = r"\[WARNING\] (\d{3}) from 127\.0\.0\.1:(\d+): .+"
#: Refusals sent to one server are at least this far apart: at most ~14 log lines per second,
#: under the server's 20 per second per worker.
REFUSAL_SPACING_S = 0.07

_last_refusal = 0.0


def rejected_line(status: int, port: int) -> str:
    """The regex of the refusal line for one status and client port."""
    return rf"\[WARNING\] {status} from 127\.0\.0\.1:{port}: .+"


@contextlib.contextmanager
def recorded_server(serve, *flags: str, env: dict[str, str] | None = None) -> Iterator:
    """``serve("call_log:app", *flags)`` with ``server.call_log`` naming its call record."""
    fd, path = tempfile.mkstemp(prefix="ferrogate-calls-")
    os.close(fd)
    try:
        with serve("call_log:app", *flags, env={"CALL_LOG": path, **(env or {})}) as server:
            server.call_log = Path(path)
            yield server
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def calls(server) -> list[str]:
    """Every app call recorded so far (``METHOD PATH?QUERY``), oldest first."""
    return server.call_log.read_bytes().decode("latin-1").splitlines()


def send_tolerant(conn, raw: bytes) -> None:
    """Send ``raw``; a server that answers and closes before taking it all is not an error
    here (the response is then read from what already arrived)."""
    try:
        conn.send(raw)
    except (BrokenPipeError, ConnectionResetError):
        pass


def assert_still_serving(server) -> None:
    """Nothing panicked and a fresh connection is served normally."""
    assert "panick" not in server.log().lower(), server.log()
    resp = server.get("/n/alive")
    assert (resp.status, resp.body) == (200, b"alive")


def _space_out() -> None:
    global _last_refusal
    wait = _last_refusal + REFUSAL_SPACING_S - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    _last_refusal = time.monotonic()


def assert_refused(
    server,
    raw: bytes,
    statuses: tuple[int, ...] = (400,),
    *,
    app_not_called: bool = True,
    count_log_lines: bool = True,
    method: str = "GET",
) -> Response:
    """``raw`` (sent in one piece) gets one response with a status in ``statuses`` and a
    text/plain body, then the connection closes, the app is not called (when the server
    records calls), ONE refusal line naming the status and the client's port is logged, and
    the server keeps serving."""
    _space_out()
    mark = server.log_mark()
    recorded = hasattr(server, "call_log")
    before = len(calls(server)) if recorded else 0
    with server.connect(timeout=5) as conn:
        port = conn.local_port
        send_tolerant(conn, raw)
        try:
            resp = conn.read_response(method=method)
        except ConnectionResetError as exc:
            raise AssertionError(f"reset before a response; got {conn.buffer!r}") from exc
        except IncompleteResponse as exc:
            raise AssertionError(f"no full response to {raw[:200]!r}: {exc}") from None
        assert resp.status in statuses, (resp.status, resp.reason, resp.body, raw[:200])
        content_type = resp.header("Content-Type") or ""
        assert content_type.startswith("text/plain"), resp.headers
        # Also fails if anything follows the refusal, such as an answer to a smuggled request.
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    if recorded and app_not_called:
        made = calls(server)[before:]
        assert made == [], f"the app was called for a refused request: {made}"
    if count_log_lines:
        server.wait_for_log(rejected_line(resp.status, port), since=mark, timeout=5)
    assert_still_serving(server)
    logged = server.log_since(mark)
    if count_log_lines:
        lines = re.findall(REJECTED, logged)
        assert len(lines) == 1, f"wanted one refusal line, got {len(lines)}:\n{logged}"
    assert "Traceback" not in logged, logged
    return resp


def assert_served(server, raw: bytes, status: int = 200, method: str = "GET") -> Response:
    """``raw`` (one request, sent in one piece) gets a ``status`` response and the connection
    stays usable for one more request."""
    with server.connect(timeout=5) as conn:
        send_tolerant(conn, raw)
        try:
            resp = conn.read_response(method=method)
        except (IncompleteResponse, ConnectionResetError) as exc:
            raise AssertionError(f"no response to {raw[:200]!r}: {exc}") from None
        assert resp.status == status, (resp.status, resp.reason, resp.body[:300], raw[:200])
        if (resp.header("Connection") or "").lower() != "close":
            conn.send(b"GET /n/next HTTP/1.1\r\nHost: x\r\n\r\n")
            after = conn.read_response()
            assert after.status == 200, (after.status, after.body)
            if hasattr(server, "call_log"):  # basic.py's /n/<x> route
                assert after.body == b"next", after.body
    return resp
