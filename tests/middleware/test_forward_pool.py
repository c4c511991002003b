"""Forward's keep-alive pool (src/middleware/forward/pool.rs): upstream connections reused
across requests, kept up to ``max_idle`` per upstream for ``idle_timeout``, and a kept one
the upstream closed replaced at checkout, so that even a POST does not fail for it. The
upstream is a raw socket server that numbers its connections, so the tests see which one
each request came on."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.middleware.forward_peers import proxy

#: The ways whose pool is the Rust one: the lifted layer and the WSGI object (the Python
#: object forwards on the Rust pool too, on its own runtime).
POOLED_WAYS = ["lifted", "wsgiref"]


class CountingUpstream:
    """HTTP/1.1 with keep-alive; each answer's body is the number of the connection it came
    on. ``close_after``: a connection is closed after that many answers, without saying so
    (as an upstream's keep-alive timeout does). ``/slow`` answers after 0.5 s."""

    def __init__(self, close_after: int = 0):
        self.close_after = close_after
        self.connections = 0
        #: Connections the proxy closed (their end of the stream read here).
        self.closed_by_peer = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            threading.Thread(target=self._answer, args=(conn, number), daemon=True).start()

    def _answer(self, conn: socket.socket, number: int) -> None:
        data = b""
        answered = 0
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        with self.lock:
                            self.closed_by_peer += 1
                        return
                    data += piece
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                if b"/slow" in head.split(b"\r\n")[0]:
                    time.sleep(0.5)
                body = str(number).encode()
                head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                conn.sendall(head % len(body) + body)
                answered += 1
                if self.close_after and answered >= self.close_after:
                    return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def upstream():
    server = CountingUpstream()
    yield server
    server.close()


def connection_of(url: str, method: str = "GET") -> int:
    response = requests.request(method, url, data=b"x" if method == "POST" else None)
    assert response.status_code == 200, response.text
    return int(response.text)


@pytest.mark.parametrize("way", POOLED_WAYS)
def test_sequential_requests_reuse_one_upstream_connection(way, upstream):
    with proxy(way, [upstream.url], "--workers", "1") as p:
        used = {connection_of(p.url("/proxy/a"), method) for method in ["GET", "POST"] * 10}
    assert used == {1}
    assert upstream.connections == 1


@pytest.mark.parametrize("way", POOLED_WAYS)
def test_a_kept_connection_the_upstream_closed_is_replaced_even_for_a_post(way):
    """Each connection is closed by the upstream after one answer: the next request finds
    its kept connection ended and takes a new one; nothing fails, not even a POST (which is
    never sent twice), and with no other upstream and no retries."""
    closing = CountingUpstream(close_after=1)
    try:
        with proxy(way, [closing.url], "--workers", "1", retries=0) as p:
            used = []
            for method in ["POST", "GET"] * 4:
                used.append(connection_of(p.url("/proxy/a"), method))
                time.sleep(0.05)  # the upstream's close reaches the proxy
        assert used == list(range(1, 9))
    finally:
        closing.close()


def slow_round(url: str, count: int) -> set[int]:
    with ThreadPoolExecutor(count) as pool:
        return set(pool.map(lambda _: connection_of(url + "/slow"), range(count)))


# Three requests at once need three connections; afterwards max_idle of them are kept, and
# the next three at once open only the rest anew.
@pytest.mark.parametrize(("max_idle", "new"), [(2, 1), (3, 0), (4, 0)])
def test_max_idle_connections_are_kept_per_upstream(upstream, max_idle, new):
    with proxy("lifted", [upstream.url], "--workers", "1", max_idle=max_idle) as p:
        first = slow_round(p.url("/proxy"), 3)
        assert first == {1, 2, 3}
        second = slow_round(p.url("/proxy"), 3)
    assert len(second - first) == new, (first, second)
    assert upstream.connections == 3 + new


@pytest.mark.parametrize(("pause", "connections"), [(0.2, 1), (1.0, 2)])
def test_a_connection_idle_longer_than_idle_timeout_is_not_used(upstream, pause, connections):
    with proxy("lifted", [upstream.url], "--workers", "1", idle_timeout=0.6) as p:
        connection_of(p.url("/proxy/a"))
        time.sleep(pause)
        connection_of(p.url("/proxy/a"))
    assert upstream.connections == connections


@pytest.mark.parametrize("way", POOLED_WAYS)
def test_an_idle_connection_is_closed_at_idle_timeout_without_traffic(way, upstream):
    """No request comes after the first: the kept connection is closed by the pool when it
    passes idle_timeout (before it, not), not left open until some next checkout."""
    with proxy(way, [upstream.url], "--workers", "1", idle_timeout=1.0) as p:
        connection_of(p.url("/proxy/a"))
        time.sleep(0.5)
        assert upstream.closed_by_peer == 0, "closed below idle_timeout"
        deadline = time.monotonic() + 5
        while upstream.closed_by_peer == 0:
            assert time.monotonic() < deadline, "still open past idle_timeout"
            time.sleep(0.05)
        assert upstream.connections == 1
