"""Answers with the worker's current directory (for --chdir)."""

import os
from wsgiref.validate import validator


def _app(environ, start_response):
    body = os.getcwd().encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = validator(_app)
