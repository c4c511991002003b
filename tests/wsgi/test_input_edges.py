"""Request body edge cases (src/wsgi/input.rs, apps/input_reader.py): a big body the app
mostly leaves unread, `Expect: 100-continue` to an app that never reads, and read(n) /
readline() where the body's chunks do not line up with what the app asks for."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.rawhttp import build_request, chunked

MIB = 1024 * 1024
#: Pause between chunks sent one by one, so they reach the server as separate reads.
CHUNK_PAUSE_S = 0.01


@pytest.fixture(scope="module")
def server(serve):
    with serve("input_reader:app") as s:
        yield s


def send_chunks_paced(conn, target: str, parts: list[bytes]) -> None:
    """A chunked POST whose chunks are written one at a time (no Nagle delay, a pause each)."""
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.send(build_request("POST", target, headers={"Transfer-Encoding": "chunked"}))
    for part in parts:
        time.sleep(CHUNK_PAUSE_S)
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    time.sleep(CHUNK_PAUSE_S)
    conn.send(b"0\r\n\r\n")


def post_chunks(server, target: str, parts: list[bytes], paced: bool) -> dict:
    with server.connect(timeout=10) as conn:
        if paced:
            send_chunks_paced(conn, target, parts)
        else:
            conn.send_request(
                "POST", target, body=chunked(*parts), headers={"Transfer-Encoding": "chunked"}
            )
        resp = conn.read_response()
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_app_reading_10_bytes_of_1_mib_leaves_the_connection_usable(server, framing):
    body = bytes(range(256)) * (MIB // 256)
    headers = {}
    wire_body = body
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        wire_body = chunked(*(body[i : i + 65536] for i in range(0, MIB, 65536)))
    with server.connect(timeout=10) as conn:
        conn.send_request("POST", "/read-some?10", body=wire_body, headers=headers)
        first = conn.read_response()
        conn.send_request("POST", "/read", body=b"the next request")
        second = conn.read_response()
        conn.send_request("GET", "/read")
        third = conn.read_response()
    assert first.status == 200
    assert json.loads(first.body) == {"data": body[:10].decode("latin-1")}
    assert first.header("Connection") is None, "the server gave up the connection"
    assert json.loads(second.body) == {"data": "the next request"}
    assert json.loads(third.body) == {"data": ""}


@pytest.mark.timeout(15)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_expect_100_continue_to_an_app_that_never_reads(server, framing):
    length = {"Content-Length": str(MIB)}
    if framing == "chunked":
        length = {"Transfer-Encoding": "chunked"}
    with server.connect(timeout=3) as conn:
        conn.send_request("POST", "/ignore", headers={"Expect": "100-continue", **length})
        started = time.monotonic()
        resp = conn.read_response()  # a 100 Continue would come back as a response of its own
        elapsed = time.monotonic() - started
        assert resp.status == 200, f"got {resp.status} {resp.reason} before the final response"
        assert json.loads(resp.body) == {}
        assert elapsed < 2, f"final response took {elapsed:.1f}s"
        if (resp.header("Connection") or "").lower() == "close":
            # The body never came and will not be read: the connection must end, not hang.
            assert conn.is_closed_by_peer(timeout=2)
            assert conn.buffer == b""
        else:
            # Kept open: the server must read past the body the client now sends.
            conn.send(b"x" * MIB if framing == "content-length" else chunked(b"x" * 1000))
            conn.send_request("POST", "/read", body=b"after")
            assert json.loads(conn.read_response().body) == {"data": "after"}


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "one-write"])
@pytest.mark.parametrize("n", [16, 1])
def test_read_n_returns_exactly_n_bytes_across_chunks(server, paced, n):
    sizes = [3, 50, 7, 1, 100, 20, 16, 15]  # smaller than, larger than and equal to 16
    parts = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    body = b"".join(parts)
    out = post_chunks(server, f"/read-n?{n}", parts, paced)
    assert out["data"] == body.decode()
    full, rest = divmod(len(body), n)
    assert out["sizes"] == [n] * full + ([rest] if rest else [])


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "one-write"])
def test_readline_joins_lines_split_across_chunks(server, paced):
    parts = [b"ab", b"c\nde", b"f", b"g" * 3000 + b"h\n\nla", b"st\n", b"\n", b"tail"]
    out = post_chunks(server, "/readline", parts, paced)
    assert out["lines"] == ["abc\n", "def" + "g" * 3000 + "h\n", "\n", "last\n", "\n", "tail"]


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "one-write"])
def test_readline_with_size_across_chunks(server, paced):
    parts = [b"ab", b"c\nde", b"f", b"ghij\n", b"k"]
    out = post_chunks(server, "/readline-n?4", parts, paced)
    assert out["lines"] == ["abc\n", "defg", "hij\n", "k"]
