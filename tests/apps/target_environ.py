"""Answers with the environ keys that the request line and head decide, as JSON (valid WSGI).

Also reads the whole body (``body``, latin-1) so a chunked request's trailers have been read
by the time it answers, and lists every HTTP_* key (``http_keys``).
"""

import json
from wsgiref.validate import validator

KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "HTTP_HOST",
    "CONTENT_LENGTH",
    "wsgi.url_scheme",
)


def _dump(environ, start_response):
    chunks = []
    while True:
        chunk = environ["wsgi.input"].read(65536)
        if not chunk:
            break
        chunks.append(chunk)
    out = {key: environ.get(key) for key in KEYS}
    out["http_keys"] = sorted(k for k in environ if k.startswith("HTTP_"))
    out["body"] = b"".join(chunks).decode("latin-1")
    body = json.dumps(out).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_dump)
