"""/stuck?SECONDS blocks in ``stuck_in_the_app`` (the name a --timeout test looks for in the
stacks faulthandler writes); any other path answers at once. Answers name the worker pid."""

import json
import os
import time


def stuck_in_the_app(seconds: float) -> None:
    time.sleep(seconds)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/stuck":
        stuck_in_the_app(float(environ["QUERY_STRING"] or 10))
    body = json.dumps({"pid": os.getpid()}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
