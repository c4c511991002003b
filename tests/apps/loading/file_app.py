"""Loaded by path (``loading/file_app.py:app``); not importable as a module from tests/apps."""

from wsgiref.validate import validator


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"from file"]


app = validator(_app)
