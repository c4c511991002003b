"""What the Forward tests proxy to and through: upstream servers (ferrogate on a port or a
Unix socket, gunicorn, and a raw-socket one that misbehaves on purpose), and the proxy
itself served three ways (ferrogate lifted, ferrogate with --no-native-middleware, wsgiref
calling the WSGI object in this process)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.validate import validator

from ferrogate.middleware import Forward, Mount

from tests import serving
from tests.middleware.conftest import wait_port

PROXY_WAYS = ["lifted", "python", "wsgiref"]
#: gunicorn (2 gthread workers) calling the WSGI object, for the main cases.
ANY_SERVER_WAYS = [*PROXY_WAYS, "gunicorn"]


@contextlib.contextmanager
def ferrogate_upstream(
    name: str, *flags: str, bind: str | None = None, env: dict[str, str] | None = None
) -> Iterator[serving.Server]:
    """tests/apps/upstream.py under ferrogate, on a free port or on ``bind``."""
    binds = [bind] if bind else None
    extra = {"UPSTREAM_NAME": name, **(env or {})}
    with serving.serve("upstream:app", "--threads", "8", *flags, binds=binds, env=extra) as server:
        yield server


@contextlib.contextmanager
def gunicorn_upstream(name: str) -> Iterator[str]:
    port = serving.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4",
         "-b", f"127.0.0.1:{port}", "--log-level", "warning", "upstream:app"],
        cwd=serving.APPS_DIR,
        env=serving.server_env({"UPSTREAM_NAME": name}),
        start_new_session=True,
    )
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(20)


class RawUpstream:
    """A socket server that reads a request head and then does ``mode``:

    - ``reset``: closes without answering (a crash after the request was sent);
    - ``partial``: promises ``promised`` bytes (``Content-Length``, or chunked; 1 MiB),
      sends ``sent`` of them (64 KiB), closes;
    - ``hop``: answers 200 with hop-by-hop fields and one its ``Connection`` names.
    """

    def __init__(self, mode: str, chunked: bool = False, promised: int = 1 << 20,
                 sent: int = 65536):
        self.mode = mode
        self.chunked = chunked
        self.promised = promised
        self.sent = sent
        self.requests = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            self.requests += 1
            if self.mode == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                return
            if self.mode == "partial":
                framing = (b"Transfer-Encoding: chunked\r\n" if self.chunked
                           else b"Content-Length: %d\r\n" % self.promised)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + framing + b"\r\n")
                piece = b"x" * self.sent
                conn.sendall(b"%x\r\n" % self.sent + piece + b"\r\n" if self.chunked else piece)
                return
            body = b"hop\n"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nServer: rawup/1\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\n"
                b"Connection: keep-alive, X-Private\r\nKeep-Alive: timeout=5\r\n"
                b"X-Private: secret\r\nX-Public: shown\r\nContent-Type: text/plain\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )

    def close(self) -> None:
        self.sock.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Proxy:
    """A proxy's address, and its error log (ferrogate's stderr, or wsgiref's captured)."""

    def __init__(self, host: str, port: int, log=lambda: "", server=None):
        self.host = host
        self.port = port
        self.log = log
        #: The ferrogate master serving it (None under wsgiref).
        self.server: serving.Server | None = server

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


@contextlib.contextmanager
def proxy(way: str, upstreams: list[str], *flags: str, **options) -> Iterator[Proxy]:
    """``Mount({"/proxy": Forward(upstreams, **options)}, default=site)`` served ``way``."""
    if way == "wsgiref":
        app = Mount({"/proxy": Forward(upstreams, **options)}, default=_site)
        httpd = make_server("127.0.0.1", 0, validator(app), server_class=_ThreadingServer,
                            handler_class=_Quiet)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield Proxy("127.0.0.1", httpd.server_address[1])
        finally:
            httpd.shutdown()
            httpd.server_close()
        return
    env = {"FORWARD_UPSTREAMS": ",".join(upstreams), "FORWARD_OPTIONS": json.dumps(options)}
    if way == "gunicorn":
        port = serving.free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "gthread", "--threads", "4",
             "-b", f"127.0.0.1:{port}", "--log-level", "warning", "forward_stack:app"],
            cwd=serving.APPS_DIR, env=serving.server_env(env), start_new_session=True,
        )
        try:
            wait_port(port, proc)
            yield Proxy("127.0.0.1", port)
        finally:
            proc.terminate()
            proc.wait(20)
        return
    native = ["--no-native-middleware"] if way == "python" else []
    with serving.serve("forward_stack:app", "--threads", "8", *native, *flags, env=env) as server:
        yield Proxy(server.host, server.port, server.log, server)


def _site(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"site\n"]
