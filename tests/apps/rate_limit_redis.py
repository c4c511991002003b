"""A RateLimit kept in Redis in front of a tiny app, for tests/middleware/test_rate_limit_redis.py.
Served by ferrogate, `app` is built from the environment: $REDIS_URL (the store), $RL_RATE
(default 3/h), $RL_FAIL (open or closed, default open), $RL_TIMEOUT (seconds, default 0.05).
Under wsgiref the test calls `make` itself. Keyed by X-Client-Key, so each test counts its own
key whichever address it comes from."""

import os

from ferrogate.middleware import RateLimit


def hello(environ, start_response):
    body = b"counted\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make(store, rate="3/h", fail_open=True, redis_timeout=0.05):
    return RateLimit(
        hello,
        rate,
        key="header:X-Client-Key",
        store=store,
        redis_timeout=redis_timeout,
        fail_open=fail_open,
    )


app = make(
    os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    rate=os.environ.get("RL_RATE", "3/h"),
    fail_open=os.environ.get("RL_FAIL", "open") == "open",
    redis_timeout=float(os.environ.get("RL_TIMEOUT", "0.05")),
)
