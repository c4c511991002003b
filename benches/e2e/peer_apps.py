"""Third-party middleware the peers run in the middleware rows: whitenoise for static files,
werkzeug's DispatcherMiddleware for mounts, Paste's proxy for the proxy rows. Apart from
apps.py so that only those rows import them (their memory is not charged to the other rows'
peak RSS)."""

import os

from apps import STATIC_DIR, body64k, environ_json, hello
from paste.proxy import Proxy
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from whitenoise import WhiteNoise

static_whitenoise = WhiteNoise(hello, root=STATIC_DIR, prefix="static/")
mount3_werkzeug = DispatcherMiddleware(NotFound(), {"/a": body64k, "/b": environ_json, "/c": hello})
# The proxy rows: bench.py starts the upstream and names it before any proxy starts.
paste_proxy = Proxy(os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9"))
