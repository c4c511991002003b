"""The load of the h2idle1k row (http2_scenarios.py): opens IDLE_CONNECTIONS h2c connections
(prior knowledge), asks one GET / on each so the server has set the connection and a stream
up, then holds them all open and idle for the run's duration; the driver reads the worker's
peak RSS (VmHWM) after it. Raw frames (RFC 9113), no client library, so the bench venv needs
nothing more; a frame reader just good enough to find each response's END_STREAM.

Its result has run_wrk's shape: `requests` is the connections that got their answer,
`rps` those still open at the end over the duration (the row's req/s column is not a rate),
and the errors column the connections that got no answer.
"""

from __future__ import annotations

import resource
import selectors
import socket
import struct
import time

IDLE_CONNECTIONS = 1000

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, HEADERS, DATA, GOAWAY = 0x4, 0x1, 0x0, 0x7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream)
        + payload
    )


def _request(host: str) -> bytes:
    # HPACK (RFC 7541): :method GET, :scheme http, :path / from the static table (0x82,
    # 0x86, 0x84); :authority as a literal without indexing, name index 1.
    authority = host.encode()
    block = b"\x82\x86\x84\x01" + bytes([len(authority)]) + authority
    return _frame(HEADERS, END_STREAM | END_HEADERS, 1, block)


class _Conn:
    def __init__(self, sock: socket.socket):
        self.sock, self.buf, self.done, self.closed = sock, b"", False, False

    def feed(self, data: bytes) -> bytes:
        """Frames to send back (the SETTINGS ack)."""
        self.buf += data
        reply = b""
        while len(self.buf) >= 9:
            length = int.from_bytes(self.buf[:3], "big")
            if len(self.buf) < 9 + length:
                break
            kind, flags = self.buf[3], self.buf[4]
            stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
            self.buf = self.buf[9 + length :]
            if kind == SETTINGS and not flags & ACK:
                reply += _frame(SETTINGS, ACK, 0)
            elif kind in (HEADERS, DATA) and stream == 1 and flags & END_STREAM:
                self.done = True
            elif kind == GOAWAY:
                self.closed = True
        return reply


def run(host: str, port: int, duration: float, connections: int = IDLE_CONNECTIONS) -> dict:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < connections + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections + 256), hard))
    selector = selectors.DefaultSelector()
    conns = []
    try:
        for _ in range(connections):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(PREFACE + _frame(SETTINGS, 0, 0) + _request(f"{host}:{port}"))
            sock.setblocking(False)
            conn = _Conn(sock)
            conns.append(conn)
            selector.register(sock, selectors.EVENT_READ, conn)
        started = time.monotonic()
        deadline = started + max(duration, 1.0)
        while time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.2):
                conn = key.data
                try:
                    data = conn.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    conn.closed = True
                    selector.unregister(conn.sock)
                    continue
                reply = conn.feed(data)
                if reply:
                    conn.sock.sendall(reply)
        answered = sum(1 for c in conns if c.done)
        held = sum(1 for c in conns if c.done and not c.closed)
        return {
            "ok": True,
            "requests": answered,
            "rps": held / (time.monotonic() - started),
            "p99_ms": None,
            "socket_errors": connections - answered,
            "socket_detail": {"unanswered": connections - answered, "closed": connections - held},
            "non2xx": 0,
        }
    except OSError as exc:
        return {"ok": False, "error": f"opened {len(conns)} connections, then {exc}"}
    finally:
        selector.close()
        for conn in conns:
            conn.sock.close()
