"""Type stubs for the Rust extension module ``ferrogate._ferrogate``."""

from types import TracebackType
from typing import Any, Callable, Iterator, Optional

__version__: str

def main(argv: list[str]) -> int:
    """Parse ``argv`` like the ``ferrogate`` command, serve until stopped, return the exit code."""

def run(app: Callable[..., Any], argv: list[str]) -> int:
    """Serve an already-imported app with the settings parsed from ``argv`` (no APP argument)."""

def setting_names() -> list[tuple[str, bool]]:
    """Every setting as ``(keyword, is_switch)``: the keywords ``ferrogate.run`` accepts."""

def settings_table() -> list[dict[str, Any]]:
    """One dict per setting (name, flags, value_name, aliases, env, default, section, help,
    switch, list, hidden), in declaration order: what docs/settings.md is generated from."""

def log_line(level: str, message: str) -> None:
    """Write one line to ferrogate's error log (``level``: DEBUG, INFO, WARNING, ERROR)."""

def gunicorn_table() -> list[tuple[str, str, str]]:
    """gunicorn's settings as ``(gunicorn name, kind, ours or why)``; kind is ``same``,
    ``renamed``, ``ignored``, ``unsupported`` or ``hook``."""

class RequestTimeout(BaseException):
    """Raised in the thread of a request that ran past ``--request-timeout``. A
    ``BaseException``, so ``except Exception`` does not swallow it: ``finally`` blocks and the
    response's ``close()`` run, the client gets 504 if nothing was sent yet, and the worker
    serves on."""

class FileWrapper:
    """``wsgi.file_wrapper``: reads ``filelike`` by ``blksize``; a real file is sent zero-copy."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

class SimpleServer:
    """What ``ferrogate.make_server`` returns: the ``wsgiref`` server interface."""

    server_address: tuple[str, int]
    def __init__(
        self,
        host: str,
        port: int,
        app: Callable[..., Any],
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
    ) -> None: ...
    @staticmethod
    def adopt(fd: int, app: Callable[..., Any], argv: list[str]) -> "SimpleServer":
        """A server on the listening socket ``fd`` (which becomes the server's: pass a
        duplicate), with the settings of the command line ``argv`` (``argv[0]`` is ignored)."""
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until ``shutdown()`` is called from another thread or KeyboardInterrupt."""
    def handle_request(self) -> None:
        """Accept one connection, answer its request, and return."""
    def shutdown(self) -> None:
        """Stop ``serve_forever`` and wait until it has returned."""
    def server_close(self) -> None:
        """Close the listening socket."""
    def __enter__(self) -> "SimpleServer": ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None: ...

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

class Mount:
    """URL dispatch (werkzeug's DispatcherMiddleware, Paste's urlmap): the longest mounted
    prefix ending on a segment boundary wins (``/api`` matches ``/api`` and ``/api/x``, not
    ``/apix``); the prefix moves from PATH_INFO to SCRIPT_NAME. Keys may name a host too:
    ``domain:api.example.com/v1`` or ``http://api.example.com/v1``. No match: ``default``, or
    404. ``request_timeouts`` (seconds, by mount key) replaces ``--request-timeout`` for the
    app mounted there (0: none); ferrogate applies it when it lifts the Mount (not under
    ``--no-native-middleware``)."""

    def __init__(
        self,
        apps: dict[str, WsgiApp],
        default: Optional[WsgiApp] = None,
        request_timeouts: Optional[dict[str, float]] = None,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class IPFilter:
    """Allow and deny lists (IP addresses, CIDR ranges, ``unix`` for Unix-socket peers) on
    REMOTE_ADDR, the client address after trusted-proxy resolution. Deny wins; a non-empty
    allow list admits only its members. Refused: 403. ``allow_file``/``deny_file`` add one
    entry a line (``#`` comments), read when the object is made (so again by the new workers
    of a SIGHUP reload)."""

    def __init__(
        self,
        app: WsgiApp,
        allow: Optional[str | list[str]] = None,
        deny: Optional[str | list[str]] = None,
        allow_file: Optional[str] = None,
        deny_file: Optional[str] = None,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class ProxyHeaders:
    """A trusted proxy's ``Forwarded`` / ``X-Forwarded-For``, ``-Proto``, ``-Ssl``, ``-Host``
    and ``-Port`` believed, as the server's ``--forwarded-allow-ips`` resolution does (the same
    code): REMOTE_ADDR, REMOTE_PORT, wsgi.url_scheme, HTTP_HOST, SERVER_NAME and SERVER_PORT
    rewritten for requests whose REMOTE_ADDR is in ``trusted`` (addresses, CIDR ranges,
    ``unix``; none by default, so an empty list trusts nobody). ``headers`` limits which of the
    six are read (default all). Contradicting scheme headers: 400."""

    def __init__(
        self,
        app: WsgiApp,
        trusted: Optional[str | list[str]] = None,
        headers: Optional[list[str]] = None,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class RequestId:
    """Gives each request an id: the ``X-Request-ID`` a trusted peer sent (``trusted``:
    addresses and CIDR ranges, default this host; under ferrogate, peers in
    --forwarded-allow-ips too), else a new UUIDv7. The app sees it as ``HTTP_X_REQUEST_ID``,
    the client in the response's ``X-Request-ID``."""

    def __init__(self, app: WsgiApp, trusted: Optional[str | list[str]] = None) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class StaticFiles:
    """Files under ``directories`` (``{"/static": "./public"}``), for GET and HEAD: ETag,
    Last-Modified, 304, Range (206, multipart, 416), precompressed ``.br``/``.gz`` siblings,
    Cache-Control (``max_age``; a year and ``immutable`` for content-hashed names). A missing
    or refused path (traversal, dotfile, symlink out of the root) falls through to ``app``, or
    404 without one; another method falls through, or 405."""

    def __init__(
        self,
        app: Optional[WsgiApp],
        directories: dict[str, str],
        *,
        max_age: Optional[int] = None,
        index: bool = False,
        follow_symlinks: bool = False,
        allow_dotfiles: bool = False,
        precompressed: bool = True,
        immutable_hashed: bool = True,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class RateLimit:
    """A request rate per client address (``key="client_ip"``) or per header value
    (``key="header:X-Api-Key"``): GCRA with ``rate`` like ``"100/s"``, ``"1000/min"``,
    ``"10/h"`` and ``burst`` (default: the rate's count). Over it: 429 with Retry-After and
    the IETF RateLimit headers. Counters are shared by every process of the server through a
    table in /dev/shm of ``slots`` entries (16 bytes each).

    With ``store="redis://host:6379/0"`` the counters live in Redis instead, shared by every
    host using that store: one atomic script per request, on Redis's clock. A request waits
    at most ``redis_timeout`` seconds for Redis; when Redis is down or slower, it goes through
    uncounted (``fail_open=True``, with a warning at most once a second) or gets 503 with
    ``Retry-After: 1`` (``fail_open=False``)."""

    def __init__(
        self,
        app: WsgiApp,
        rate: str,
        burst: Optional[int] = None,
        key: str = "client_ip",
        slots: int = 65536,
        *,
        store: Optional[str] = None,
        redis_timeout: float = 0.05,
        fail_open: bool = True,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class Compress:
    """Compresses responses of compressible types (text, JSON, JS, XML, SVG ...) of at least
    ``min_size`` bytes with brotli, zstd or gzip as the client's Accept-Encoding allows
    (``encodings``: the server's preference), never a response that already has a
    Content-Encoding, a Range answer or ``Cache-Control: no-transform``. A streamed body is
    compressed and flushed chunk by chunk. ``level`` applies to every coding."""

    def __init__(
        self,
        app: WsgiApp,
        min_size: int = 512,
        level: Optional[int] = None,
        encodings: Optional[list[str]] = None,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...

class Forward:
    """A reverse proxy: sends each request to one of ``upstreams``
    (``http[s]://host:port[/base]`` or ``unix:/path``, each with an optional ``;weight=N``) and
    answers with its response, streamed both ways. An https upstream's certificate is checked
    against the system's CA store, or only the CAs in the PEM file ``ca_certs``;
    ``verify=False`` accepts any certificate (a warning is logged when it is made).
    ``strategy``: ``"round_robin"``, ``"least_conn"`` or ``"hash"`` (on
    ``hash_key``: ``"client_ip"`` or ``"header:NAME"``). ``strip_prefix`` drops SCRIPT_NAME
    (the mount prefix) from the path sent upstream. No response head within ``timeout``
    seconds: 504; no upstream answering: 502. A refused connection tries the next upstream
    (up to ``retries``), a reset only for idempotent methods unless ``retry_non_idempotent``.
    ``max_fails`` failures in a row take an upstream out for ``fail_timeout`` seconds; with
    ``health`` (a path) it is probed every ``health_interval`` seconds and comes back after
    ``health_passes`` passes. Health is shared by the processes of the server (/dev/shm).
    A response body declared at most ``buffered_response_bytes`` long (16 KiB; up to 1 MiB)
    is read whole before the answer starts: an upstream that breaks off is then a 502; a
    longer one is streamed, and a break aborts the client's connection.
    Under ferrogate it is lifted (no GIL); under any other server the same Rust client runs
    with the GIL released."""

    def __init__(
        self,
        upstreams: list[str],
        strategy: str = "round_robin",
        *,
        hash_key: str = "client_ip",
        strip_prefix: bool = False,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        retries: int = 1,
        retry_non_idempotent: bool = False,
        preserve_host: bool = False,
        via: bool = False,
        max_fails: int = 3,
        fail_timeout: float = 10.0,
        health: Optional[str] = None,
        health_interval: float = 5.0,
        health_passes: int = 2,
        max_idle: int = 1024,
        idle_timeout: float = 60.0,
        max_connections: int = 1024,
        verify: bool = True,
        ca_certs: Optional[str] = None,
        buffered_response_bytes: int = 16384,
    ) -> None: ...
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any: ...
