"""Logs through Python's logging, to the logger "app_logger": once when imported (so a test can
tell that --log-config was applied before the import) and once per request, with its path."""

import logging
import os

log = logging.getLogger("app_logger")
log.info("imported in %d", os.getpid())


def app(environ, start_response):
    log.warning("request for %s", environ["PATH_INFO"])
    body = b"logged\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
