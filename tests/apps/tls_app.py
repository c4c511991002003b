"""For the TLS tests (valid WSGI, behind the validator): ``/`` answers the TLS-related environ
keys as JSON, ``/echo`` the request body, ``/stream`` a body made of chunks yielded one by
one, ``/file`` a file through ``wsgi.file_wrapper``, ``/wrap?PATH`` the file
at PATH through ``wsgi.file_wrapper``, ``/pid`` the worker's pid, ``/sleep?S``
its answer after S seconds."""

import json
import os
import tempfile
import time
from wsgiref.validate import validator

KEYS = (
    "SERVER_PROTOCOL",
    "wsgi.url_scheme",
    "HTTPS",
    "SSL_PROTOCOL",
    "SSL_CIPHER",
    "SSL_TLS_SNI",
    "SSL_CLIENT_VERIFY",
    "SSL_CLIENT_CERT",
    "SSL_CLIENT_S_DN",
    "SSL_CLIENT_I_DN",
    "SSL_CLIENT_M_SERIAL",
    "SSL_CLIENT_V_START",
    "SSL_CLIENT_V_END",
    "SERVER_PORT",
)

_FILE = os.path.join(tempfile.mkdtemp(prefix="ferrogate-tls-app-"), "body.bin")
with open(_FILE, "wb") as f:
    f.write(bytes(range(256)) * 4096)  # 1 MiB


def _app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        body = b"".join(iter(lambda: environ["wsgi.input"].read(65536), b""))
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {i}\n".encode() for i in range(100))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(_FILE, "rb"), 65536)
    if path == "/wrap":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return environ["wsgi.file_wrapper"](open(environ["QUERY_STRING"], "rb"), 65536)
    if path == "/sleep":
        time.sleep(float(environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [b"slept"]
    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    body = json.dumps({key: environ.get(key) for key in KEYS}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_app)
