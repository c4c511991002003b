"""Writes the query string to wsgi.errors with write(), writelines() and flush() (validated)."""

from wsgiref.validate import validator


def _app(environ, start_response):
    marker = environ["QUERY_STRING"]
    errors = environ["wsgi.errors"]
    errors.write(f"written {marker}\n")
    errors.writelines([f"line one {marker}\n", f"line two {marker}\n"])
    errors.flush()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


app = validator(_app)
