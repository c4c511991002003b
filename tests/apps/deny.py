"""Answers 401 at once without reading the request body (valid WSGI, behind the validator):
the request-body-stall cases of tests/http/test_body_stall.py."""

from wsgiref.validate import validator


def _deny(environ, start_response):
    body = b"authentication required"
    start_response(
        "401 Unauthorized",
        [
            ("Content-Type", "text/plain"),
            ("WWW-Authenticate", 'Basic realm="test"'),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


app = validator(_deny)
