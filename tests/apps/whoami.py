"""Answers with the worker's uid, gid and groups as JSON, importing nothing but ``os``.

Why so bare: the test that runs it as ``nobody`` runs a Python installed under /root, which
``nobody`` cannot read, so any module the master had not imported before the fork would fail
to import. (A real deployment installs Python where its user can read it.)"""

import os


def app(environ, start_response):
    groups = ",".join(str(g) for g in os.getgroups())
    body = f'{{"uid": {os.getuid()}, "gid": {os.getgid()}, "groups": [{groups}]}}'.encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
