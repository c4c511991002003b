"""The eventlet.wsgi example, served by real eventlet or by ferrogate with one import changed:

    python eventlet_style.py ferrogate|eventlet PORT '{"keyword": value, ...}' [LIMITS-JSON]

The JSON keywords go to ``wsgi.server``; ``"log": "object:PATH"`` passes an object with only
a ``write`` method (OpenStack's WritableLogger) that appends to PATH, ``"log": "file:PATH"``
an open file; ``"wrap_ssl": {"certfile": ..., "keyfile": ...}`` wraps the socket in TLS
first; ``"server_event": true`` passes an event whose server is stopped by
GET /stop. LIMITS-JSON sets module attributes of ``wsgi`` (MAX_HEADER_LINE...) first. SIGTERM
ends the server (server() returns; exit code 0).
"""

import json
import os
import signal
import sys
import threading

BACKEND, PORT = sys.argv[1], int(sys.argv[2])
OPTIONS = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
LIMITS = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}

if BACKEND == "ferrogate":
    import ferrogate as eventlet
    from ferrogate import wsgi
else:
    import eventlet
    from eventlet import wsgi


def hello_world(env, start_response):
    path = env["PATH_INFO"]
    if path == "/str":  # the example as eventlet's docs have it: a Python 2 str body
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["Hello, World!\r\n"]
    if path == "/headers":
        headers = [("content-type", "text/plain"), ("etag", '"abc"')]
        headers += [("x-object-meta-color", "blue"), ("Content-Length", "2")]
        start_response("200 OK", headers)
        return [b"ok"]
    if path == "/environ":
        value = env.get(env["QUERY_STRING"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(value).encode()]
    if path == "/fields":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(sum(key.startswith("HTTP_") for key in env)).encode()]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"x" * 100 for _ in range(10))
    if path == "/boom":
        raise RuntimeError("boom 7c1e")
    if path == "/stop":
        threading.Timer(0.2, SERVER.stop).start()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, World!\r\n"]


class WritableLogger:
    def __init__(self, path):
        self.path = path

    def write(self, text):
        with open(self.path, "a") as out:
            out.write(text)


class Event:
    def send(self, server):
        global SERVER
        SERVER = server
        print("server_event", type(server).__name__, flush=True)


def on_term(signum, frame):
    if BACKEND == "eventlet":
        # Real eventlet's hub can swallow a SystemExit raised in a green thread (CI saw it
        # hang); it is the reference for answers here, its shutdown is not under test.
        sys.stdout.flush()
        os._exit(0)
    raise SystemExit(0)


signal.signal(signal.SIGTERM, on_term)
for name, value in LIMITS.items():
    setattr(wsgi, name, value)
kwargs = dict(OPTIONS)
log = kwargs.get("log")
if isinstance(log, str):
    kind, path = log.split(":", 1)
    kwargs["log"] = WritableLogger(path) if kind == "object" else open(path, "a")  # noqa: SIM115
if kwargs.pop("server_event", False):
    kwargs["server_event"] = Event()
listening = eventlet.listen(("127.0.0.1", PORT))
if "wrap_ssl" in kwargs:  # the example's SSL variant
    listening = eventlet.wrap_ssl(listening, server_side=True, **kwargs.pop("wrap_ssl"))
wsgi.server(listening, hello_world, **kwargs)
print("server returned", flush=True)
