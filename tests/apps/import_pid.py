"""Appends the importing process's pid to $IMPORT_LOG when imported; answers with the pid
that serves the request, so a test can tell where the app was imported (--preload)."""

import os

with open(os.environ["IMPORT_LOG"], "a") as _log:
    _log.write(f"{os.getpid()}\n")


def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
