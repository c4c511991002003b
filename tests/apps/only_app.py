"""Defines only ``app``, the second default name."""

from wsgiref.validate import validator


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "8")])
    return [b"only app"]


app = validator(_app)
