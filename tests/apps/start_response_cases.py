"""start_response misuse and exc_info handling; deliberately broken, so not behind the validator.

Each path is one case. /pid answers with the worker pid, to check the worker survived.
"""

import os
import sys

TEXT = [("Content-Type", "text/plain")]

BAD_CALLS = {
    "/status-int": (200, TEXT),
    "/status-bytes": (b"200 OK", TEXT),
    "/status-no-reason": ("200", TEXT),
    "/status-two-digits": ("42 Nope", TEXT),
    "/status-not-a-number": ("abc Nope", TEXT),
    "/headers-tuple": ("200 OK", tuple(TEXT)),
    "/header-is-list": ("200 OK", [["Content-Type", "text/plain"]]),
    "/header-bytes": ("200 OK", [(b"Content-Type", b"text/plain")]),
    "/header-value-int": ("200 OK", TEXT + [("X-Number", 5)]),
    "/header-crlf": ("200 OK", TEXT + [("X-Bad", "a\r\nX-Injected: yes")]),
    "/header-lf-in-name": ("200 OK", TEXT + [("X-Bad\nX-Injected", "yes")]),
    "/header-nul": ("200 OK", TEXT + [("X-Bad", "a\x00b")]),
    "/status-crlf": ("200 OK\r\nX-Injected: yes", TEXT),
    "/hop-connection": ("200 OK", TEXT + [("Connection", "close")]),
    "/hop-keep-alive": ("200 OK", TEXT + [("Keep-Alive", "timeout=5")]),
    "/hop-transfer-encoding": ("200 OK", TEXT + [("Transfer-Encoding", "chunked")]),
    "/hop-upgrade": ("200 OK", TEXT + [("Upgrade", "websocket")]),
}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path in BAD_CALLS:
        status, headers = BAD_CALLS[path]
        start_response(status, headers)
        return [b"the bad call was accepted"]

    if path == "/pid":
        body = str(os.getpid()).encode()
        start_response("200 OK", TEXT)
        return [body]

    if path == "/second-call-raises":
        start_response("200 OK", TEXT)
        try:
            start_response("201 Created", TEXT)
        except Exception as exc:  # noqa: BLE001 (any exception type is a refusal)
            return [f"raised {type(exc).__name__}".encode()]
        return [b"second call accepted"]

    if path == "/exc-info-replaces-pending-status":
        start_response("200 OK", TEXT + [("X-First", "yes")])
        try:
            raise ValueError("replace me")
        except ValueError:
            start_response("503 Replaced", TEXT + [("X-Second", "yes")], sys.exc_info())
        return [b"replaced"]

    if path == "/exc-info-after-headers-reraises":
        write = start_response("200 OK", TEXT)
        write(b"partial ")  # the head is on the wire now
        original = ValueError("original error 5f1c")
        try:
            raise original
        except ValueError:
            try:
                start_response("500 Oops", TEXT, sys.exc_info())
            except ValueError as again:
                verdict = "same" if again is original else "other"
                environ["wsgi.errors"].write(f"EXC-INFO-RERAISED {verdict}\n")
                environ["wsgi.errors"].flush()
                raise
        environ["wsgi.errors"].write("EXC-INFO-NOT-RERAISED\n")
        return [b"not re-raised"]

    if path == "/write-callable":
        write = start_response("200 OK", TEXT)
        write(b"hello ")
        write(b"world")
        return []

    if path == "/write-then-iterable":
        write = start_response("200 OK", TEXT)
        write(b"from write, ")
        return [b"from iterable"]

    if path == "/empty-chunk-then-error":
        # Only an empty chunk before the error: no header went out, so a 500 is still possible.
        start_response("200 OK", TEXT)

        def body():
            yield b""
            raise RuntimeError("failed after an empty chunk")

        return body()

    if path == "/no-start-response":
        return [b"forgot start_response"]

    start_response("404 Not Found", TEXT)
    return [b"no such case"]
