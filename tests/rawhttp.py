"""A raw-socket HTTP/1.x client that shows exactly what the server put on the wire.

http.client and requests hide framing (chunk sizes, a missing last chunk, a 100 Continue,
bytes after a response); these tests need to see it. Every read has a timeout, so a server
that never answers fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from typing_extensions import Self


class IncompleteResponse(AssertionError):
    """The connection closed (or timed out) in the middle of a response."""

    def __init__(self, message: str, partial: bytes):
        super().__init__(f"{message}; got {len(partial)} bytes: {partial[:300]!r}")
        self.partial = partial


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    #: The bytes of the body as sent (chunk framing included), for framing assertions.
    raw_body: bytes = b""
    chunked: bool = False
    #: Size of each chunk of a chunked body, in order (without the final 0).
    chunk_sizes: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class RawConnection:
    """One client socket with a receive buffer, so pipelined responses parse one by one."""

    def __init__(self, address, family: int = socket.AF_INET, timeout: float = 10.0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        close: bool = False,
        version: str = "HTTP/1.1",
    ) -> None:
        """Send one request with Host and (if there is a body) Content-Length."""
        self.send(build_request(method, path, body, headers, close, version))

    # -- reading ---------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read more bytes into the buffer; False at end of stream."""
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise IncompleteResponse("timed out waiting for the server", self.buffer) from None
        if not data:
            return False
        self.buffer += data
        return True

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            if not self._fill():
                raise IncompleteResponse(f"connection closed, wanted {n} bytes", self.buffer)
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _take_line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                raise IncompleteResponse("connection closed mid-line", self.buffer)
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def read_head(self) -> Response:
        """Read a status line and headers (the head of the next response)."""
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise IncompleteResponse(
                    "connection closed before a full response head", self.buffer
                )
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        return Response(version, int(status), reason, headers)

    def read_response(self, method: str = "GET") -> Response:
        """Read the next full response (a 1xx interim response counts as one)."""
        return self.read_body(self.read_head(), method)

    def read_body(self, resp: Response, method: str = "GET") -> Response:
        """Read the body that belongs to ``resp`` (a head from ``read_head``) into it."""
        if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
            return resp
        encoding = (resp.header("Transfer-Encoding") or "").lower()
        length = resp.header("Content-Length")
        if "chunked" in encoding:
            self._read_chunked(resp)
        elif length is not None:
            resp.body = resp.raw_body = self._take(int(length))
        else:
            resp.body = resp.raw_body = self.read_until_close()
        return resp

    def _read_chunked(self, resp: Response) -> None:
        resp.chunked = True
        raw, body = [], []
        while True:
            line = self._take_line()
            raw.append(line + b"\r\n")
            size = int(line.split(b";")[0], 16)
            if size == 0:
                break
            data = self._take(size + 2)
            raw.append(data)
            if data[-2:] != b"\r\n":
                raise IncompleteResponse("chunk not followed by CRLF", b"".join(raw))
            body.append(data[:-2])
            resp.chunk_sizes.append(size)
        while True:  # trailers, up to the empty line
            line = self._take_line()
            raw.append(line + b"\r\n")
            if not line:
                break
        resp.body = b"".join(body)
        resp.raw_body = b"".join(raw)

    def read_until_close(self) -> bytes:
        """Everything until the server closes the connection (fails on timeout)."""
        while self._fill():
            pass
        data, self.buffer = self.buffer, b""
        return data

    def is_closed_by_peer(self, timeout: float) -> bool:
        """True if the server closes (or resets) the connection within ``timeout`` seconds
        without sending anything more."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)
        if data:
            self.buffer += data
            return False
        return True


def build_request(
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    close: bool = False,
    version: str = "HTTP/1.1",
) -> bytes:
    """The exact bytes of a simple request."""
    names = {k.lower() for k in (headers or {})}
    lines = [f"{method} {path} {version}"]
    if "host" not in names:
        lines.append("Host: localhost")
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes) -> bytes:
    """A chunked request body made of ``parts``, with the final zero chunk."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p)
    return out + b"0\r\n\r\n"
