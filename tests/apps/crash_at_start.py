"""Dies while it is imported, the first $CRASHES times (a crash loop), then serves.

Each import appends "<pid> <time.monotonic()>" to $IMPORT_LOG, so a test can measure the
pauses between attempts. Odd attempts exit with code 13, even ones die of SIGSEGV.
"""

import json
import os
import signal
import time

with open(os.environ["IMPORT_LOG"], "a+") as _log:
    _log.write(f"{os.getpid()} {time.monotonic()}\n")
    _log.seek(0)
    ATTEMPT = len(_log.read().splitlines())

if ATTEMPT <= int(os.environ["CRASHES"]):
    if ATTEMPT % 2:
        os._exit(13)
    os.kill(os.getpid(), signal.SIGSEGV)


def app(environ, start_response):
    body = json.dumps({"pid": os.getpid(), "attempt": ATTEMPT}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
