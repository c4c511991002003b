"""``ferrogate.run(app)`` with no keyword: everything comes from the environment and the
config file in the working directory (tests/api/test_run.py)."""

import os

import ferrogate


def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


if __name__ == "__main__":
    ferrogate.run(app)
