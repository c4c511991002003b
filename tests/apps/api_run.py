"""``ferrogate.run`` from a script: python api_run.py PORT UNIX_PATH [bad-option]."""

import json
import os
import sys
from wsgiref.validate import validator

import ferrogate


def _app(environ, start_response):
    body = json.dumps(
        {
            "pid": os.getpid(),
            "multiprocess": environ["wsgi.multiprocess"],
            "multithread": environ["wsgi.multithread"],
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_app)

if __name__ == "__main__":
    port, unix_path = sys.argv[1], sys.argv[2]
    options = {"no_such_option": 1} if sys.argv[3:] == ["bad-option"] else {}
    ferrogate.run(
        app,
        bind=[f"127.0.0.1:{port}", f"unix:{unix_path}"],
        workers=2,
        threads=2,
        access_log="-",
        **options,
    )
