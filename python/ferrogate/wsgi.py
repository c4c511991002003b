"""eventlet.wsgi's ``server()`` on ferrogate: code written for ``eventlet.wsgi.server(sock,
app)`` runs with one import changed (``from ferrogate import wsgi`` and ``ferrogate.listen``).

The server runs in this process (no fork), on ferrogate's engine: an I/O thread and a pool of
Python threads, not green threads. Each of eventlet's parameters keeps its meaning; the
README's "From eventlet" table says where one differs. Two of eventlet's defaults are not
kept: ``debug`` is False (eventlet's True sends tracebacks to any client), and the number of
header fields is not capped, as eventlet does not cap it either.

Module limits, honoured when set before ``server()`` is called (as OpenStack services do):
``MAX_REQUEST_LINE``, ``MAX_HEADER_LINE`` and ``MINIMUM_CHUNK_SIZE``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any, Callable, Iterable, Optional

from ._ferrogate import SimpleServer

__all__ = [
    "DEFAULT_LOG_FORMAT",
    "DEFAULT_MAX_SIMULTANEOUS_REQUESTS",
    "HttpProtocol",
    "MAX_HEADER_LINE",
    "MAX_REQUEST_LINE",
    "MINIMUM_CHUNK_SIZE",
    "Server",
    "server",
]

DEFAULT_MAX_SIMULTANEOUS_REQUESTS = 1024
DEFAULT_MAX_HTTP_VERSION = "HTTP/1.1"
#: Longest request line, in bytes (414 beyond it).
MAX_REQUEST_LINE = 8192
#: Longest header line (``Name: value``), in bytes (431 beyond it).
MAX_HEADER_LINE = 8192
#: Yields smaller than this are joined before they are sent (``minimum_chunk_size``).
MINIMUM_CHUNK_SIZE = 4096
DEFAULT_LOG_FORMAT = (
    '%(client_ip)s - - [%(date_time)s] "%(request_line)s" %(status_code)s %(body_length)s '
    "%(wall_seconds).6f"
)

WsgiApp = Callable[..., Any]


class HttpProtocol:
    """Stands for eventlet's default protocol class: passing it is the same as passing none.
    Any other class cannot be honoured (the HTTP layer is native) and is a ``TypeError``."""


class Server:
    """What ``server_event.send()`` receives: the running server, which ``stop()`` ends."""

    def __init__(self, native: SimpleServer, sock: Any) -> None:
        self._native = native
        self.socket = sock
        self.server_address = native.server_address

    def stop(self) -> None:
        """Stops serving (requests in flight finish first); ``server()`` then returns."""
        threading.Thread(target=self._native.shutdown, daemon=True).start()


def _keep_alive_seconds(keepalive: Any, socket_timeout: Optional[float]) -> Optional[float]:
    """eventlet's ``keepalive``: False closes after each request, a number is the idle time,
    True keeps the connection as long as the socket timeout allows."""
    if keepalive is False:
        return 0
    if keepalive is True:
        return socket_timeout
    return float(keepalive)


def _access_log_target(log: Any, log_output: bool) -> Optional[str]:
    """Where the access log goes: a file's descriptor is written by the native side directly;
    any other object with ``write`` (a StringIO, OpenStack's WritableLogger) gets each line
    from a thread that reads them off a pipe, so no request waits on Python to log."""
    if not log_output:
        return None
    log = sys.stderr if log is None else log
    try:
        fd = log.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:
        if hasattr(log, "flush"):
            log.flush()
        return f"/dev/fd/{os.dup(fd)}"
    read_end, write_end = os.pipe()

    def forward() -> None:
        with os.fdopen(read_end, "r", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                log.write(line)

    threading.Thread(target=forward, name="ferrogate-access-log", daemon=True).start()
    return f"/dev/fd/{write_end}"


#: eventlet's ``log_format`` variables as the access log's atoms.
_EVENTLET_ATOMS = {
    "client_ip": "h",
    "date_time": "t",
    "request_line": "r",
    "status_code": "s",
    "body_length": "B",
    "wall_seconds": "L",
}


def access_log_format(log_format: str) -> str:
    """eventlet's ``log_format`` (``%(client_ip)s``, ``%(date_time)s``, ``%(request_line)s``,
    ``%(status_code)s``, ``%(body_length)s``, ``%(wall_seconds).6f``) as an
    ``--access-log-format``. ``[%(date_time)s]`` becomes the access log's bracketed time
    (``[05/Dec/2026:21:00:00 +0000]``); an unknown variable is a ``ValueError`` naming it."""

    def atom(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _EVENTLET_ATOMS:
            known = ", ".join(sorted(_EVENTLET_ATOMS))
            raise ValueError(f"log_format: unknown variable %({name})s (known: {known})")
        return f"%({_EVENTLET_ATOMS[name]})s"

    text = log_format.replace("[%(date_time)s]", "%(date_time)s")
    return re.sub(r"%\((\w+)\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]", atom, text)


def _with_environ(site: WsgiApp, extra: dict[str, Any], minimum_chunk_size: int) -> WsgiApp:
    """``environ`` keys merged into every request's environ, and yields smaller than
    ``minimum_chunk_size`` joined before they are sent, as eventlet does."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ.update(extra)
        environ["eventlet.minimum_write_chunk_size"] = minimum_chunk_size
        result: Iterable[bytes] = site(environ, start_response)
        if isinstance(result, (list, tuple)) or minimum_chunk_size <= 1:
            return result
        return _coalesced(result, environ, minimum_chunk_size)

    return app


def _coalesced(result: Iterable[bytes], environ: dict[str, Any], default: int) -> Iterable[bytes]:
    pending: list[bytes] = []
    size = 0
    try:
        for chunk in result:
            pending.append(chunk)
            size += len(chunk)
            if size >= environ.get("eventlet.minimum_write_chunk_size", default):
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()


def server(
    sock: Any,
    site: WsgiApp,
    log: Any = None,
    environ: Optional[dict[str, Any]] = None,
    max_size: Optional[int] = None,
    max_http_version: str = DEFAULT_MAX_HTTP_VERSION,
    protocol: Any = None,
    server_event: Any = None,
    minimum_chunk_size: Optional[int] = None,
    log_x_forwarded_for: bool = True,
    custom_pool: Any = None,
    keepalive: Any = True,
    log_output: bool = True,
    log_format: str = DEFAULT_LOG_FORMAT,
    url_length_limit: int = MAX_REQUEST_LINE,
    debug: bool = False,
    socket_timeout: Optional[float] = None,
    capitalize_response_headers: bool = True,
) -> None:
    """Serves ``site`` on the listening socket ``sock`` until KeyboardInterrupt, SystemExit
    or ``Server.stop()``, as ``eventlet.wsgi.server`` does. ``sock`` stays the caller's."""
    if protocol is not None and protocol is not HttpProtocol:
        raise TypeError(
            "ferrogate.wsgi.server() cannot use a custom protocol class: the HTTP layer is "
            "native (drop the protocol argument)"
        )
    if max_http_version not in ("HTTP/1.1", "HTTP/1.0"):
        raise ValueError(
            f"max_http_version must be 'HTTP/1.1' or 'HTTP/1.0', not {max_http_version!r}"
        )
    del log_x_forwarded_for  # see the README's table
    line_format = access_log_format(log_format)
    argv = ["ferrogate", "--workers", "1", "--limit-request-fields", "0"]
    # eventlet limits the URL; ferrogate the whole line: room for the longest method and version.
    argv += ["--limit-request-line", str(min(MAX_REQUEST_LINE, url_length_limit + 30))]
    argv += ["--limit-request-field-size", str(MAX_HEADER_LINE)]
    argv += ["--max-connections", str(max_size or DEFAULT_MAX_SIMULTANEOUS_REQUESTS)]
    if socket_timeout is not None:
        argv += ["--socket-timeout", str(socket_timeout)]
    idle = _keep_alive_seconds(keepalive, socket_timeout)
    if max_http_version == "HTTP/1.0":
        idle = 0
    if idle is not None:
        argv += ["--keep-alive", str(idle)]
    pool_size = getattr(custom_pool, "size", None)
    if isinstance(pool_size, int) and pool_size > 0:
        argv += ["--threads", str(min(pool_size, 65535))]
    if debug:
        argv.append("--debug")
    if capitalize_response_headers:
        argv.append("--capitalize-response-headers")
    target = _access_log_target(log, log_output)
    if target is not None:
        argv += ["--access-log", target, "--access-log-format", line_format]
    argv += list(getattr(sock, "tls_flags", []))  # ferrogate.wrap_ssl
    if environ is not None or minimum_chunk_size is not None:
        chunk = MINIMUM_CHUNK_SIZE if minimum_chunk_size is None else minimum_chunk_size
        site = _with_environ(site, dict(environ or {}), chunk)
    native = SimpleServer.adopt(os.dup(sock.fileno()), site, argv)
    if server_event is not None:
        server_event.send(Server(native, sock))
    try:
        native.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        native.server_close()
