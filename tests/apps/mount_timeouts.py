"""A Mount with a request timeout for one mounted app only (ferrogate.middleware.Mount's
``request_timeouts``): ``/short`` is apps/runaway.py (1 s), ``/long`` is apps/queue_time.py
(no timeout: its ``/sleep?SECONDS`` completes)."""

import queue_time
import runaway
from ferrogate.middleware import Mount

app = Mount({"/short": runaway.app, "/long": queue_time.app}, request_timeouts={"/short": 1.0})
