"""Reports the time the request waited for a Python thread: ``/`` answers JSON with
``ferrogate.queue_time`` (and its type name); ``/sleep?SECONDS`` sleeps first, so that it
holds its thread; ``/missing`` answers 404. Any other path is answered like ``/``."""

import json
import time


def app(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(float(environ["QUERY_STRING"] or 1))
    queue_time = environ.get("ferrogate.queue_time")
    body = json.dumps(
        {"queue_time": queue_time, "type": type(queue_time).__name__, "app": True}
    ).encode()
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
