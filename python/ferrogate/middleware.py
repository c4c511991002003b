"""Native WSGI middleware: ordinary WSGI callables implemented in Rust.

Under any WSGI server (wsgiref, gunicorn, granian ...) each object behaves like its Python
counterpart (werkzeug's ``DispatcherMiddleware``, an IP allow/deny list, a request-id
middleware). When ferrogate serves an app whose outer layers are these objects, it lifts them
into its native request pipeline: what they answer themselves (a 403, a 404, a static file, a
429) never takes the GIL, and only requests that fall through reach the Python threads.

::

    from ferrogate.middleware import IPFilter, Mount, RateLimit, RequestId, StaticFiles

    app = RequestId(
        IPFilter(
            RateLimit(
                StaticFiles(
                    Mount({"/api": api_app, "/admin": admin_app}, default=site_app),
                    {"/static": "./public"}, max_age=3600),
                "100/s", burst=200, key="client_ip"),
            allow=["10.0.0.0/8", "::1"], deny=["10.6.6.0/24"]))

``Forward(["http://10.0.0.5:8080", "unix:/run/app.sock"], strategy="least_conn")`` is a
reverse proxy to a pool of upstream servers (mount it with ``Mount``); lifted, it forwards on
the I/O thread, and under any other server the same Rust client runs with the GIL released.

``RateLimit(..., store="redis://host:6379/0")`` counts in Redis, across every host that
uses the same store; lifted, the round trip is awaited on the I/O thread, never blocking it.

``ProxyHeaders(app, trusted=["10.0.0.0/8"])`` believes a trusted proxy's ``Forwarded`` and
``X-Forwarded-*`` headers as the server's ``--forwarded-allow-ips`` does (the same Rust code),
for an app that says whom it trusts itself; put it outermost, so the layers inside see the
real client.

Lifting stops at any Python middleware between these layers: it, and everything it wraps,
runs as Python. At debug level ferrogate logs which layers it lifted.
"""

from __future__ import annotations

from ._ferrogate import (
    Compress,
    Forward,
    IPFilter,
    Mount,
    ProxyHeaders,
    RateLimit,
    RequestId,
    StaticFiles,
)

__all__ = [
    "Compress",
    "Forward",
    "IPFilter",
    "Mount",
    "ProxyHeaders",
    "RateLimit",
    "RequestId",
    "StaticFiles",
]
