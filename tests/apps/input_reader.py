"""Reads wsgi.input in the way the path names and answers with JSON about what it got.

Not behind the validator: it calls read() without a size, which the validator forbids but
the issue asks for. Lines and chunks are sent back as latin-1 text.
/read            read()
/read-n?N        read(N) until b""; chunk sizes and content
/readline        readline() until b""
/readline-n?N    readline(N) until b""
/readlines       readlines()
/readlines-hint?N  readlines(N), then read() for the rest
/iterate         for line in input
/past-end        read(), then read(), read(10), readline(), readlines() again
/digest          read(65536) until b"": length and sha256 (for big uploads)
/ignore          does not read the body at all
/read-some?N     read(N) once, leaves the rest
"""

import hashlib
import json


def _text(data):
    return data.decode("latin-1")


def app(environ, start_response):
    stream = environ["wsgi.input"]
    path, query = environ["PATH_INFO"], environ["QUERY_STRING"]
    n = int(query) if query else None
    out = {}
    if path == "/read":
        out["data"] = _text(stream.read())
    elif path == "/read-n":
        chunks = []
        while True:
            chunk = stream.read(n)
            if not chunk:
                break
            chunks.append(chunk)
        out["sizes"] = [len(c) for c in chunks]
        out["data"] = _text(b"".join(chunks))
    elif path == "/readline":
        out["lines"] = [_text(line) for line in iter(stream.readline, b"")]
    elif path == "/readline-n":
        out["lines"] = [_text(line) for line in iter(lambda: stream.readline(n), b"")]
    elif path == "/readlines":
        out["lines"] = [_text(line) for line in stream.readlines()]
    elif path == "/readlines-hint":
        out["lines"] = [_text(line) for line in stream.readlines(n)]
        out["rest"] = _text(stream.read())
    elif path == "/iterate":
        out["lines"] = [_text(line) for line in stream]
    elif path == "/past-end":
        out["data"] = _text(stream.read())
        out["after"] = [
            _text(stream.read()),
            _text(stream.read(10)),
            _text(stream.readline()),
        ]
        out["after_readlines"] = stream.readlines()
    elif path == "/digest":
        digest, size = hashlib.sha256(), 0
        while True:
            chunk = stream.read(65536)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
        out["size"], out["sha256"] = size, digest.hexdigest()
    elif path == "/read-some":
        out["data"] = _text(stream.read(n))
    elif path != "/ignore":
        out["error"] = "unknown case"
    body = json.dumps(out).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
