"""For the --socket-timeout / --header-timeout tests: an app that reads its body, and one that
streams a large response, each recording what happened to it (valid WSGI, behind the validator).

Records go to the file named by $TIMEOUT_LOG (nothing is recorded without it), one line each:
``<tag> <event> <time.monotonic()> <detail>``, where the tag is the query string and the events
are ``start`` (the app was called), ``read-error`` (wsgi.input.read() raised; the detail is
``<type name> <isinstance OSError> <message>``), ``read-done`` (the whole body was read; detail
is its size), ``generator-exit`` (the streaming generator was closed while suspended) and
``close`` (the iterable's close() ran).
/read       reads wsgi.input.read(65536) until b""; 200 with the size, or 500 after an error
/stream     a generator of 64 KiB chunks, 64 MiB in all (a client that never reads it stalls)
anything else   "Hello, world!" at once
"""

import os
import time
from wsgiref.validate import validator

CHUNK = b"s" * 65536
STREAM_CHUNKS = 1024  # 64 MiB


def record(tag, event, detail=""):
    path = os.environ.get("TIMEOUT_LOG")
    if not path or not tag:
        return
    with open(path, "a") as f:
        f.write(f"{tag} {event} {time.monotonic():.6f} {detail}".rstrip() + "\n")


class Recorded:
    """A list-like body whose close() is recorded."""

    def __init__(self, tag, chunks):
        self.tag = tag
        self.chunks = iter(chunks)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.chunks)

    def close(self):
        record(self.tag, "close")


def stream(tag):
    try:
        for _ in range(STREAM_CHUNKS):
            yield CHUNK
    except GeneratorExit:
        record(tag, "generator-exit")
        raise
    finally:
        record(tag, "close")


def _app(environ, start_response):
    path, tag = environ["PATH_INFO"], environ["QUERY_STRING"]
    if path == "/read":
        record(tag, "start")
        size = 0
        try:
            while True:
                chunk = environ["wsgi.input"].read(65536)
                if not chunk:
                    break
                size += len(chunk)
        except Exception as exc:  # noqa: BLE001 - recorded for the test to look at
            detail = f"{type(exc).__name__} {isinstance(exc, OSError)} {exc}".replace("\n", " ")
            record(tag, "read-error", detail)
            body = f"read failed: {type(exc).__name__}".encode()
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
            )
            return Recorded(tag, [body])
        record(tag, "read-done", str(size))
        body = f"read {size}".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return Recorded(tag, [body])
    if path == "/stream":
        record(tag, "start")
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(len(CHUNK) * STREAM_CHUNKS)),
            ],
        )
        return stream(tag)
    body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = validator(_app)
