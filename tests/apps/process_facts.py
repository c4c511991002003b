"""Answers with facts about the worker process as JSON: its uid/gid, umask, a few environment
variables (GREETING, EMPTY, FROM_GUNICORN) and SCRIPT_NAME."""

import json
import os
from wsgiref.validate import validator


def _facts(environ, start_response):
    umask = os.umask(0)
    os.umask(umask)
    body = json.dumps(
        {
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "groups": os.getgroups(),
            "umask": umask,
            "env": {k: os.environ.get(k) for k in ("GREETING", "EMPTY", "FROM_GUNICORN")},
            "script_name": environ["SCRIPT_NAME"],
        }
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_facts)
