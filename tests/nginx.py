"""Runs a real nginx (Debian's package) for a test: a generated config in the test's folder,
in the foreground, stopped with SIGTERM at the end. A missing nginx fails the test, naming
the packages; `make test` installs them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
MISSING = (
    "nginx is needed for this test and was not found: install the Debian packages nginx and "
    "libnginx-mod-stream (apt-get install nginx libnginx-mod-stream)"
)


def listening(port: int) -> bool:
    """Whether 127.0.0.1:port is in LISTEN state (read from /proc; no connection is made)."""
    needle = f"0100007F:{port:04X} 00000000:0000 0A"
    return needle in Path("/proc/net/tcp").read_text()


@contextlib.contextmanager
def running_nginx(
    folder: Path, port: int, main: str, stream: bool = False, user: str | None = None
) -> Iterator[Path]:
    """nginx with ``main`` as the body of its config (``http { ... }`` or ``stream { ... }``),
    until the block ends; it must listen on 127.0.0.1:``port``. Yields its error log."""
    binary = shutil.which("nginx")
    if binary is None or (stream and not STREAM_MODULE.exists()):
        pytest.fail(MISSING)
    conf, error_log = folder / "nginx.conf", folder / "nginx-error.log"
    head = f"load_module {STREAM_MODULE};\n" if stream else ""
    if user:
        head += f"user {user};\n"
    conf.write_text(
        f"{head}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {error_log} info;\n"
        "events { worker_connections 64; }\n" + main
    )
    proc = subprocess.Popen(
        [binary, "-e", str(error_log), "-p", f"{folder}/", "-c", str(conf), "-g", "daemon off;"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not (folder / "nginx.pid").exists() or not listening(port):
            if proc.poll() is not None:
                log = error_log.read_text() if error_log.exists() else ""
                pytest.fail(f"nginx exited {proc.returncode}: {proc.stderr.read().decode()}\n{log}")
            if time.monotonic() > deadline:
                pytest.fail("nginx did not start listening within 10 s")
            time.sleep(0.05)
        yield error_log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            pytest.fail("nginx did not stop on SIGTERM")
