"""ferrogate's side of the middleware rows: the apps of apps.py behind ferrogate.middleware's
native objects, which ferrogate lifts into its request pipeline. Imported only by ferrogate
(its own .venv); the peers' equivalents are in apps.py (plain Python) and peer_apps.py."""

import os

from apps import STATIC_DIR, body64k, environ_json, hello
from ferrogate.middleware import Forward, IPFilter, Mount, RateLimit, StaticFiles

static_files = StaticFiles(hello, {"/static": STATIC_DIR})
deny_loopback = IPFilter(hello, deny=["127.0.0.0/8"])
rate_limited = RateLimit(hello, "1/h", burst=1)
mount3 = Mount({"/a": body64k, "/b": environ_json, "/c": hello})
# The proxy rows: bench.py starts the upstream and names it before any proxy starts.
forward = Forward([os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9")])
