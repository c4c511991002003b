"""Answers with JSON naming the worker pid and a token made when this module was imported,
so a test can tell a re-imported app (SIGHUP) from the old one, and the client's port (which
connection carried the request). /sleep?SECONDS sleeps first.

Every import appends "<pid> <token>" to $IMPORT_LOG when that variable is set.
"""

import json
import os
import time
import uuid
from wsgiref.validate import validator

TOKEN = uuid.uuid4().hex
IMPORTED_AT = time.time()

if os.environ.get("IMPORT_LOG"):
    with open(os.environ["IMPORT_LOG"], "a") as _log:
        _log.write(f"{os.getpid()} {TOKEN}\n")


def _app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or 1))
    answer = {
        "pid": os.getpid(),
        "token": TOKEN,
        "imported_at": IMPORTED_AT,
        "port": environ.get("REMOTE_PORT"),
    }
    body = json.dumps(answer).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_app)
