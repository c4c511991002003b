"""/sleep?SECONDS blocks in time.sleep; /spin?SECONDS computes (holding the GIL) for that long;
/work?N computes a fixed amount (N loop turns), however long it takes; any other path answers
at once. All answer with JSON naming the worker pid, the thread, and the
wsgi.multithread / multiprocess flags (validated)."""

import json
import os
import threading
import time
from wsgiref.validate import validator


def _app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or 1))
    elif environ["PATH_INFO"] == "/spin":
        until = time.perf_counter() + float(environ["QUERY_STRING"] or 1)
        while time.perf_counter() < until:
            pass
    elif environ["PATH_INFO"] == "/work":
        for _ in range(int(environ["QUERY_STRING"] or 1000)):
            pass
    body = json.dumps(
        {
            "pid": os.getpid(),
            "thread": threading.get_ident(),
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_app)
