"""An upstream server for the Forward tests: it says who it is ($UPSTREAM_NAME) and what it
received, and misbehaves on request. Served by ferrogate and by gunicorn in the tests.

- ``/echo...``: JSON with the name, method, path, query, headers, and the body's length and
  sha256 (read in 64 KiB pieces, so a 1 GiB upload costs no memory here either).
- ``/bytes?n=N``: N bytes (a repeating pattern) streamed in 64 KiB pieces; ``&length=0``
  without a Content-Length (chunked on the wire).
- ``/slow?s=S``: answers after S seconds; ``$UPSTREAM_DELAY`` delays every request.
- ``/health``: 200, or 503 while the file ``$UPSTREAM_SICK`` exists.
- ``/etag``: 304 for ``If-None-Match: "v1"``, else 200 with ``ETag: "v1"``.
"""

import hashlib
import json
import os
import time

NAME = os.environ.get("UPSTREAM_NAME", "upstream")
PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern(n):
    """The first ``n`` bytes the /bytes endpoint sends (the tests compare against it)."""
    while n > 0:
        piece = PATTERN[: min(n, len(PATTERN))]
        n -= len(piece)
        yield piece


def _read_body(environ):
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    left = int(length) if length else None
    digest = hashlib.sha256()
    total = 0
    while left is None or left > 0:
        piece = stream.read(65536 if left is None else min(65536, left))
        if not piece:
            break
        digest.update(piece)
        total += len(piece)
        if left is not None:
            left -= len(piece)
    return total, digest.hexdigest()


def app(environ, start_response):
    delay = float(os.environ.get("UPSTREAM_DELAY", "0"))
    if delay:
        time.sleep(delay)
    path = environ["PATH_INFO"]
    query = dict(
        part.split("=", 1) for part in environ.get("QUERY_STRING", "").split("&") if "=" in part
    )
    if path == "/health":
        sick = os.environ.get("UPSTREAM_SICK")
        status = "503 Service Unavailable" if sick and os.path.exists(sick) else "200 OK"
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]
    if path == "/slow":
        time.sleep(float(query.get("s", "1")))
    if path == "/bytes":
        n = int(query.get("n", "0"))
        headers = [("Content-Type", "application/octet-stream"), ("X-Upstream", NAME)]
        if query.get("length") != "0":
            headers.append(("Content-Length", str(n)))
        start_response("200 OK", headers)
        return pattern(n)
    if path == "/etag":
        if environ.get("HTTP_IF_NONE_MATCH") == '"v1"':
            start_response("304 Not Modified", [("ETag", '"v1"')])
            return []
        body = b"tagged\n"
        start_response(
            "200 OK", [("ETag", '"v1"'), ("Content-Length", str(len(body)))]
        )
        return [body]
    length, sha = _read_body(environ)
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    body = json.dumps(
        {
            "name": NAME,
            "method": environ["REQUEST_METHOD"],
            "script_name": environ["SCRIPT_NAME"],
            "path": path,
            "query": environ.get("QUERY_STRING", ""),
            "headers": headers,
            "content_type": environ.get("CONTENT_TYPE", ""),
            "length": length,
            "sha256": sha,
            # The name a TLS client asked for (SNI), when the upstream serves https.
            "sni": environ.get("SSL_TLS_SNI", ""),
        }
    ).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
         ("X-Upstream", NAME)],
    )
    return [body]
