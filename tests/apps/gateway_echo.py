"""For the uwsgi protocol tests: /env answers with the request's CGI-level environ as JSON,
/stream yields five chunks without a Content-Length, /digest reads the body and answers
with its length and sha256. Behind the validator."""

import hashlib
import json
from wsgiref.validate import validator

SHOWN = (
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL",
    "SERVER_NAME", "SERVER_PORT", "REMOTE_ADDR", "CONTENT_TYPE", "CONTENT_LENGTH",
    "wsgi.url_scheme",
)  # fmt: skip


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {i}\n".encode() for i in range(5))
    if path == "/digest":
        digest, length = hashlib.sha256(), 0
        while chunk := environ["wsgi.input"].read(65536):
            digest.update(chunk)
            length += len(chunk)
        answer = {"length": length, "sha256": digest.hexdigest()}
    else:
        answer = {key: environ.get(key) for key in SHOWN}
        answer["headers"] = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    body = json.dumps(answer).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_app)
