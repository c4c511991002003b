"""Answers with the environ keys that proxy headers may change, as JSON (valid WSGI, behind the
validator): REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme, HTTP_HOST, SERVER_NAME, SERVER_PORT and
every HTTP_X_FORWARDED_* / HTTP_FORWARDED key. A key the server did not set is left out."""

import json
from wsgiref.validate import validator

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT")


def _dump(environ, start_response):
    out = {key: environ[key] for key in KEYS if key in environ}
    for key, value in environ.items():
        if key.startswith("HTTP_X_FORWARDED_") or key == "HTTP_FORWARDED":
            out[key] = value
    body = json.dumps(out, sort_keys=True).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_dump)
