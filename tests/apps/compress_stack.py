"""ferrogate.middleware.Compress around apps that answer in the ways compression must
handle: a JSON body known in full, a text stream of chunks (each must reach the client as it
is yielded), a PNG, an already-encoded body, a small body, a `no-transform` one, and one
written with write(). Validated by wsgiref's validator on both sides."""

import json
import time
from wsgiref.validate import validator

from ferrogate.middleware import Compress

DOC = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}).encode()


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/json":
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(DOC))), ("ETag", '"v1"')])
        return [DOC]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])

        def chunks():
            for i in range(5):
                yield f"line {i} {'x' * 200}\n".encode()
                time.sleep(0.2)

        return chunks()
    if path == "/png":
        start_response("200 OK", [("Content-Type", "image/png"), ("Content-Length", "4096")])
        return [b"\x89PNG" + b"\0" * 4092]
    if path == "/encoded":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Encoding", "gzip"), ("Content-Length", "4096")])
        return [b"z" * 4096]
    if path == "/small":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"small"]
    if path == "/no-transform":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Cache-Control", "no-transform"), ("Content-Length", "4096")])
        return [b"n" * 4096]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/html")])
        write(b"<p>" + b"w" * 3000 + b"</p>")
        return [b"<p>end</p>"]
    if path == "/short":
        # Declares 4096 bytes, yields 1000 in two chunks: a broken response, never a whole one.
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4096")])
        return iter([b"s" * 500, b"s" * 500])
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no"]


_checked = validator(_app)


def _unchecked(environ, start_response):
    # wsgiref's validator itself refuses a short body before the layer sees it.
    if environ["PATH_INFO"] == "/short":
        return _app(environ, start_response)
    return _checked(environ, start_response)


app = Compress(_unchecked)
