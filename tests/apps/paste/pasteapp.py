"""paste.deploy factories for tests/paste: an app that answers its ``text`` option (and the
path it saw), a filter that prefixes the body, and a filter whose factory fails."""

import logging

LOG = logging.getLogger("pasteapp")


def app_factory(global_conf, text="hello", **local_conf):
    def app(environ, start_response):
        LOG.info("pasteapp served %s", environ["PATH_INFO"])
        body = f"{text} {environ['SCRIPT_NAME']}|{environ['PATH_INFO']}".encode()
        if environ["PATH_INFO"] == "/big":
            body = b"x" * 4096
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app


def prefix_filter_factory(global_conf, prefix="py:", **local_conf):
    def wrap(app):
        def filtered(environ, start_response):
            def without_length(status, headers, exc_info=None):
                kept = [(k, v) for k, v in headers if k.lower() != "content-length"]
                return start_response(status, kept, exc_info)

            return [prefix.encode() + b"".join(app(environ, without_length))]

        return filtered

    return wrap


def broken_filter_factory(global_conf, **local_conf):
    raise RuntimeError("the broken filter's factory failed")


#: What a proxy's headers change, for the ProxyHeaders tests.
PROXIED_KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME",
                "SERVER_PORT")  # fmt: skip


def environ_app(environ, start_response):
    """Answers the environ keys a proxy's headers change, as JSON."""
    import json

    body = json.dumps({key: environ.get(key) for key in PROXIED_KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def environ_factory(global_conf, **local_conf):
    return environ_app
