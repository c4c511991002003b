"""A Forward mounted at /proxy in front of a Python app, for the Forward tests: the
upstreams come from $FORWARD_UPSTREAMS (comma-separated) and the keywords from
$FORWARD_OPTIONS (JSON). Served by ferrogate (lifted, or --no-native-middleware) and called
by wsgiref in the tests."""

import json
import os

from ferrogate.middleware import Forward, Mount


def site(environ, start_response):
    """``/pid``: the worker's pid (which worker answered); anything else: ``site``."""
    body = str(os.getpid()).encode() if environ["PATH_INFO"] == "/pid" else b"site\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def build():
    upstreams = os.environ["FORWARD_UPSTREAMS"].split(",")
    options = json.loads(os.environ.get("FORWARD_OPTIONS", "{}"))
    return Mount({"/proxy": Forward(upstreams, **options)}, default=site)


app = build()
