"""apps/basic.py behind a wrapper that records every call, for "the app is never called" tests.

Each call appends one line ``METHOD PATH_INFO?QUERY_STRING`` (latin-1) to the file named by the
CALL_LOG environment variable (a test passes it with ``serve(..., env={"CALL_LOG": path})``).
OPTIONS (``OPTIONS * HTTP/1.1`` has no path the validator would take) is answered here, 204.
"""

import os

from basic import app as basic_app


def _record(environ):
    path = os.environ.get("CALL_LOG")
    if not path:
        return
    line = f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}"
    if environ.get("QUERY_STRING"):
        line += "?" + environ["QUERY_STRING"]
    with open(path, "ab") as f:
        f.write(line.encode("latin-1", "replace") + b"\n")


def app(environ, start_response):
    _record(environ)
    if environ["REQUEST_METHOD"] == "OPTIONS":
        start_response("204 No Content", [("Allow", "GET, HEAD, POST, OPTIONS")])
        return []
    return basic_app(environ, start_response)
