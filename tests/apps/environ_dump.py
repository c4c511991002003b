"""Answers with the WSGI environ as JSON (valid WSGI, behind the validator).

Values that JSON can carry are sent as they are (tuples as lists); other objects as their
type name. ``test.types`` holds every value's type name as the server made it (recorded
before the validator wraps wsgi.input and wsgi.errors), and ``test.checks`` a few identity
checks that only the server process can make.
"""

import json
from wsgiref.validate import validator

import ferrogate

_STREAM_METHODS = ("read", "readline", "readlines", "__iter__", "write", "writelines", "flush")


def _dump(environ, start_response):
    out = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int, float)) or value is None:
            out[key] = value
        elif isinstance(value, tuple):
            out[key] = list(value)
        elif not key.startswith("test."):
            out[key] = type(value).__name__
    out["test.types"] = environ["test.types"]
    out["test.checks"] = environ["test.checks"]
    body = json.dumps(out).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


_validated = validator(_dump)


def app(environ, start_response):
    environ["test.types"] = {k: type(v).__name__ for k, v in environ.items()}
    environ["test.checks"] = {
        "file_wrapper_is_ferrogate": environ.get("wsgi.file_wrapper") is ferrogate.FileWrapper,
        "input_methods": [m for m in _STREAM_METHODS if hasattr(environ["wsgi.input"], m)],
        "errors_methods": [m for m in _STREAM_METHODS if hasattr(environ["wsgi.errors"], m)],
    }
    return _validated(environ, start_response)
