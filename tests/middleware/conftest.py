"""Serves tests/apps/middleware_stack.py four ways for the middleware case tables: ferrogate
with the layers lifted, ferrogate with --no-native-middleware, wsgiref (in this process,
validator-wrapped) and gunicorn (2 workers). Each way is a base URL."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.validate import validator

import pytest

from tests import serving

WAYS = ["lifted", "python", "wsgiref", "gunicorn"]

HELLO = b"hello, static world\n"


def make_static_root(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "hello.txt").write_bytes(HELLO)
    (root / "app.3f2a9c1b.js").write_bytes(b"console.log('hashed');\n")
    (root / ".secret").write_bytes(b"dotfile secret\n")
    (root / "sub" / "index.html").write_bytes(b"<h1>index</h1>\n")
    (root / "big.bin").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (root / "data.json").write_bytes(b'{"k": "' + b"v" * 2000 + b'"}')
    (root / "data.json.gz").write_bytes(b"not really gzip, but chosen by name")
    outside = root.parent / "outside.txt"
    outside.write_bytes(b"outside the root\n")
    (root / "escape.txt").symlink_to(outside)
    return root


@pytest.fixture(scope="session")
def static_root(tmp_path_factory) -> Path:
    root = make_static_root(tmp_path_factory.mktemp("static") / "root")
    os.environ["STATIC_ROOT"] = str(root)
    return root


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@dataclass
class Way:
    name: str
    host: str
    port: int


def wait_port(port: int, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 20
    while not serving.can_connect(f"127.0.0.1:{port}"):
        assert proc is None or proc.poll() is None, "server exited"
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


@pytest.fixture(scope="session", params=WAYS)
def way(request, static_root):
    env = {"STATIC_ROOT": str(static_root)}
    if request.param in ("lifted", "python"):
        flags = ["--no-native-middleware"] if request.param == "python" else []
        with serving.serve("middleware_stack:app", *flags, env=env) as server:
            yield Way(request.param, server.host, server.port)
    elif request.param == "wsgiref":
        sys.path.insert(0, str(serving.APPS_DIR))
        stack = importlib.import_module("middleware_stack")
        httpd = make_server("127.0.0.1", 0, validator(stack.app), handler_class=QuietHandler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield Way("wsgiref", "127.0.0.1", httpd.server_address[1])
        httpd.shutdown()
        httpd.server_close()
    else:
        port = serving.free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
             "--log-level", "warning", "middleware_stack:app"],
            cwd=serving.APPS_DIR,
            env=serving.server_env(env),
            start_new_session=True,
        )
        try:
            wait_port(port, proc)
            yield Way("gunicorn", "127.0.0.1", port)
        finally:
            proc.terminate()
            proc.wait(20)
