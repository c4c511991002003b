"""wsgi.input for a Content-Length body that is still arriving when the app reads: the app's
thread reads it off the socket itself (src/http/direct_body.rs). Every body here is sent in
pieces after its head, with pauses, so that reads cannot be served from what came with the head.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import pytest

from tests.rawhttp import RawConnection, build_request
from tests.serving import free_port

MIB = 1024 * 1024
#: Pause between the pieces of a body, so they reach the server as separate reads.
PIECE_PAUSE_S = 0.02


@pytest.fixture(scope="module")
def server(serve, tmp_path_factory):
    sock_path = tmp_path_factory.mktemp("direct") / "s.sock"
    with serve("input_reader:app", binds=[f"127.0.0.1:{free_port()}", f"unix:{sock_path}"]) as s:
        yield s


@pytest.fixture(scope="module")
def tcp_server(serve):
    with serve("input_reader:app") as s:
        yield s


def send_paced(
    conn: RawConnection, target: str, body: bytes, pieces: int, tail: bytes = b""
) -> None:
    """The head alone, then `body` in `pieces` writes with a pause before each; `tail` goes in
    the same write as the last piece."""
    if conn.sock.family != socket.AF_UNIX:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.send(build_request("POST", target, headers={"Content-Length": str(len(body))}))
    step = -(-len(body) // pieces)
    for start in range(0, len(body), step):
        time.sleep(PIECE_PAUSE_S)
        piece = body[start : start + step]
        conn.send(piece + (tail if start + step >= len(body) else b""))


def paced_post(server, target: str, body: bytes, pieces: int = 4, bind: str | None = None) -> dict:
    with server.connect(bind=bind) as conn:
        send_paced(conn, target, body, pieces)
        resp = conn.read_response()
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def pattern(size: int, seed: int = 0) -> bytes:
    return bytes((i * 7 + seed) % 251 for i in range(size))


@pytest.mark.parametrize("n", [1, 1000, 65536, 2 * MIB])
def test_read_n_returns_exactly_n_bytes_of_a_body_still_arriving(tcp_server, n):
    body = pattern(150_000 if n > 1 else 3000)
    out = paced_post(tcp_server, f"/read-n?{n}", body, pieces=5)
    assert out["data"].encode("latin-1") == body
    full, rest = divmod(len(body), n)
    assert out["sizes"] == [n] * full + ([rest] if rest else [])


@pytest.mark.parametrize("size", [300_000, 3 * MIB], ids=["under-1MiB", "over-1MiB"])
def test_read_without_size_returns_the_whole_body(tcp_server, size):
    body = pattern(size, seed=3)
    out = paced_post(tcp_server, "/read", body, pieces=6)
    assert out["data"].encode("latin-1") == body


def test_readline_across_pieces_of_a_content_length_body(tcp_server):
    body = b"ab" + b"c\nde" + b"f" * 5000 + b"\n\nlast"
    out = paced_post(tcp_server, "/readline", body, pieces=7)
    assert out["lines"] == ["abc\n", "de" + "f" * 5000 + "\n", "\n", "last"]


def test_body_read_off_a_unix_socket(server):
    body = pattern(200_000, seed=5)
    out = paced_post(server, "/digest", body, pieces=4, bind=server.binds[1])
    assert out == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_reads_stop_at_the_body_end_when_the_next_request_follows_in_the_same_write(tcp_server):
    body = pattern(100_000, seed=9)
    with tcp_server.connect() as conn:
        send_paced(
            conn, "/read-n?4096", body, pieces=3, tail=build_request("POST", "/read", b"next one")
        )
        first = conn.read_response()
        second = conn.read_response()
    assert json.loads(first.body)["data"].encode("latin-1") == body
    assert json.loads(second.body) == {"data": "next one"}


def test_part_read_body_still_arriving_is_discarded_and_keep_alive_goes_on(tcp_server):
    body = pattern(400_000, seed=1)
    with tcp_server.connect() as conn:
        send_paced(conn, "/read-some?10", body, pieces=4)
        first = conn.read_response()
        conn.send_request("POST", "/read", body=b"after")
        second = conn.read_response()
    assert json.loads(first.body) == {"data": body[:10].decode("latin-1")}
    assert first.header("Connection") is None, "the server gave up the connection"
    assert json.loads(second.body) == {"data": "after"}


def test_body_sent_after_100_continue_is_read_to_its_end(tcp_server):
    body = pattern(500_000, seed=11)
    with tcp_server.connect() as conn:
        headers = {"Expect": "100-continue", "Content-Length": str(len(body))}
        conn.send(build_request("POST", "/digest", headers=headers))
        interim = conn.read_response()  # fails on timeout if the server waits for the body
        assert interim.status == 100
        for start in range(0, len(body), 100_000):
            time.sleep(PIECE_PAUSE_S)
            conn.send(body[start : start + 100_000])
        final = conn.read_response()
        conn.send_request("POST", "/read", body=b"next")
        after = conn.read_response()
    assert json.loads(final.body) == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert json.loads(after.body) == {"data": "next"}


def test_client_closing_mid_body_is_an_error_in_the_app_and_one_log_line(tcp_server):
    mark = tcp_server.log_mark()
    with tcp_server.connect() as conn:
        conn.send(build_request("POST", "/read-n?100", headers={"Content-Length": "1000"}))
        time.sleep(PIECE_PAUSE_S)
        conn.send(b"x" * 250)
        time.sleep(PIECE_PAUSE_S)
        conn.sock.shutdown(socket.SHUT_WR)
        resp = conn.read_response()
    assert resp.status == 500
    tcp_server.wait_for_log(
        "error reading the request body: the client closed before the body ended", since=mark
    )
    assert tcp_server.get("/read").status == 200, "the server stopped serving"


def test_concurrent_uploads_each_get_their_own_bytes(tcp_server):
    bodies = [pattern(300_000 + i * 1000, seed=i) for i in range(8)]
    results: dict[int, dict] = {}

    def upload(i: int) -> None:
        results[i] = paced_post(tcp_server, "/digest", bodies[i], pieces=6)

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, body in enumerate(bodies):
        assert results.get(i) == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}, i
