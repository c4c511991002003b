"""WSGI apps for the end-to-end benchmark: one callable per scenario.

Every server under test loads the very same callables from this module
(``apps:hello``, ``apps:post``, ...), so only the server differs between rows.
Free of third-party imports: the Flask scenario lives in flask_apps.py, so that Flask's
~20 MiB is not charged to every other scenario's peak RSS.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import tempfile
import threading
import time

HELLO = b"Hello, world!"  # 13 bytes
BODY_64K = b"x" * (64 * 1024)
CHUNK_1K = b"y" * 1024
STREAM_CHUNKS = 100
FILE_SIZE = 1024 * 1024

# The 1 MiB file served through wsgi.file_wrapper. bench.py creates it up front
# (BENCH_DATA_FILE); apps.py also creates it on demand so the module stands alone.
DATA_FILE = os.environ.get(
    "BENCH_DATA_FILE", os.path.join(tempfile.gettempdir(), "ferrogate-bench-1m.bin")
)


def ensure_data_file(path: str = DATA_FILE) -> str:
    if not (os.path.exists(path) and os.path.getsize(path) == FILE_SIZE):
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(bytes(range(256)) * (FILE_SIZE // 256))
        os.replace(tmp, path)
    return path


# The static-file rows (static1k, static1m): every server serves this directory under /static.
# Made at import time, the same bytes every time, so any server (or the driver) that imports
# this module finds it ready; BENCH_STATIC_DIR moves it. World-readable: nginx's worker runs
# as nobody.
STATIC_DIR = os.environ.get(
    "BENCH_STATIC_DIR", os.path.join(tempfile.gettempdir(), "ferrogate-bench-static")
)
STATIC_FILES = {
    "1k.bin": bytes(range(256)) * 4,
    "1m.bin": bytes(range(256)) * (1024 * 1024 // 256),
}


def ensure_static_dir(root: str = STATIC_DIR) -> str:
    os.makedirs(root, mode=0o755, exist_ok=True)
    for name, data in STATIC_FILES.items():
        path = os.path.join(root, name)
        try:
            with open(path, "rb") as fh:
                if fh.read() == data:
                    continue
        except OSError:
            pass
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return root


ensure_static_dir()


def _plain(start_response, body: bytes, ctype: str = "text/plain") -> list:
    start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def hello(environ, start_response):
    """13-byte hello world (also used for the Connection: close scenario)."""
    return _plain(start_response, HELLO)


def upstream(environ, start_response):
    """The proxy rows' upstream: 1 MiB at /1m, hello anywhere else."""
    if environ["PATH_INFO"] == "/1m":
        return _plain(start_response, STATIC_FILES["1m.bin"], "application/octet-stream")
    return hello(environ, start_response)


def body64k(environ, start_response):
    """A 64 KiB response body in one piece."""
    return _plain(start_response, BODY_64K, "application/octet-stream")


def stream(environ, start_response):
    """Generator body: 100 yields of 1 KiB, no Content-Length (chunked on HTTP/1.1)."""
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        for _ in range(STREAM_CHUNKS):
            yield CHUNK_1K

    return gen()


def post(environ, start_response):
    """Reads all of wsgi.input (by CONTENT_LENGTH, 64 KiB at a time) and returns its length."""
    stream_in = environ["wsgi.input"]
    try:
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        remaining = 0
    total = 0
    while remaining > 0:
        chunk = stream_in.read(min(remaining, 65536))
        if not chunk:
            break
        total += len(chunk)
        remaining -= len(chunk)
    return _plain(start_response, str(total).encode())


ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "HTTP_HOST",
    "HTTP_USER_AGENT",
    "wsgi.url_scheme",
)


def environ_json(environ, start_response):
    """Reads ~10 environ keys and returns them as a small JSON object."""
    data = {key: str(environ.get(key, "")) for key in ENVIRON_KEYS}
    return _plain(start_response, json.dumps(data).encode(), "application/json")


def sleep10(environ, start_response):
    """Sleeps 10 ms (an I/O-bound handler) then says hello."""
    time.sleep(0.010)
    return _plain(start_response, HELLO)


def filewrapper(environ, start_response):
    """A 1 MiB file through wsgi.file_wrapper (falls back to a read loop if absent)."""
    path = ensure_data_file()
    fh = open(path, "rb")
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(FILE_SIZE))],
    )
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is not None:
        return wrapper(fh, 65536)
    return iter(lambda: fh.read(65536), b"")


# Plain-Python middleware: the peers' side of the deny403 and ratelimit429 rows, doing what
# ferrogate.middleware's IPFilter and RateLimit do (native_apps.py), the way an app would
# without them. Both answer with a short text body and a Content-Length, as those do.


class DenyList:
    """IPFilter(app, deny=[...]) in Python: 403 when REMOTE_ADDR is in a denied network."""

    def __init__(self, app, deny):
        self.app, self.deny = app, [ipaddress.ip_network(n) for n in deny]

    def __call__(self, environ, start_response):
        addr = ipaddress.ip_address(environ.get("REMOTE_ADDR") or "0.0.0.0")
        if any(addr in net for net in self.deny):
            start_response(
                "403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", "9")]
            )
            return [b"Forbidden"]
        return self.app(environ, start_response)


class TokenBucket:
    """RateLimit(app, rate, burst) in Python: a token bucket per REMOTE_ADDR, 429 when empty."""

    def __init__(self, app, per_second: float, burst: int):
        self.app, self.rate, self.burst = app, per_second, burst
        self.buckets: dict = {}  # address -> (tokens, monotonic time of the last update)
        self.lock = threading.Lock()  # gthread and granian call from several threads

    def __call__(self, environ, start_response):
        key, now = environ.get("REMOTE_ADDR", ""), time.monotonic()
        with self.lock:
            tokens, last = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= 1
            self.buckets[key] = (tokens - 1 if allowed else tokens, now)
        if allowed:
            return self.app(environ, start_response)
        retry = str(math.ceil((1 - tokens) / self.rate))
        body = b"Too Many Requests"
        start_response(
            "429 Too Many Requests",
            [("Content-Type", "text/plain"), ("Retry-After", retry), ("Content-Length", "17")],
        )
        return [body]


deny_loopback = DenyList(hello, deny=["127.0.0.0/8"])
token_bucket = TokenBucket(hello, per_second=1 / 3600, burst=1)  # "1/h", burst 1
