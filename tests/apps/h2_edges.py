"""Valid WSGI (behind the validator) for the HTTP/2 tests.

/big?N        N bytes as 64 KiB chunks from a generator (a streamed response)
/file?N       N bytes through wsgi.file_wrapper (a file body, read in blocks for HTTP/2)
/slow?S       sleeps S seconds, then answers "slept"
/upload       reads wsgi.input in 64 KiB pieces; answers "<length> <sha256>"
/endless?ID   64 KiB chunks until the client goes away; close() appends ID to $CLOSE_LOG
anything else: the environ keys the tests look at, one "KEY=value" a line
"""

import hashlib
import os
import tempfile
import time
from wsgiref.validate import validator

_KEYS = (
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_PROTOCOL",
    "HTTP_HOST",
    "HTTP_COOKIE",
    "CONTENT_LENGTH",
    "wsgi.url_scheme",
)


class _Endless:
    def __init__(self, tag):
        self.tag = tag

    def __iter__(self):
        return self

    def __next__(self):
        time.sleep(0.001)
        return b"x" * 65536

    def close(self):
        with open(os.environ["CLOSE_LOG"], "a") as f:
            f.write(self.tag + "\n")


def _chunks(total):
    sent = 0
    while sent < total:
        n = min(65536, total - sent)
        sent += n
        yield b"y" * n


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _chunks(int(query))
    if path == "/file":
        data = tempfile.TemporaryFile()
        data.write(b"f" * int(query))
        data.seek(0)
        start_response(
            "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", query)]
        )
        return environ["wsgi.file_wrapper"](data, 65536)
    if path == "/slow":
        time.sleep(float(query or "0.5"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/upload":
        digest = hashlib.sha256()
        length = 0
        while True:
            chunk = environ["wsgi.input"].read(65536)
            if not chunk:
                break
            length += len(chunk)
            digest.update(chunk)
        body = f"{length} {digest.hexdigest()}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/endless":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _Endless(query)
    lines = [f"{key}={environ.get(key, '')}" for key in _KEYS]
    body = "\n".join(lines).encode("latin-1")
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Content-Length", str(len(body))),
            ("X-Mixed-Case", "kept"),
        ],
    )
    return [body]


app = validator(_app)
