"""Importable only when ``--pythonpath elsewhere`` (or an absolute path to it) is given."""

from wsgiref.validate import validator


def _app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "15")])
    return [b"from pythonpath"]


application = validator(_app)
