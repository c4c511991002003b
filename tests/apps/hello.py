"""Defines both default names; the loader must pick ``application`` over ``app``."""

from wsgiref.validate import validator


def _answer(text):
    body = text.encode()

    def wsgi(environ, start_response):
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return validator(wsgi)


application = _answer("application")
app = _answer("app")
custom = _answer("custom")
