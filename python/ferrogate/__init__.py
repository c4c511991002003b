"""ferrogate: a PEP 3333 WSGI server written in Rust.

Run an app from the command line with ``ferrogate module:app``, or from Python::

    import ferrogate
    ferrogate.run(app, bind="127.0.0.1:8000", workers=2)

``make_server`` is a drop-in for ``wsgiref.simple_server.make_server``.
"""

from __future__ import annotations

import difflib
import socket
from typing import Any, Callable, Optional

from . import _ferrogate
from ._ferrogate import FileWrapper, RequestTimeout, SimpleServer, __version__

__all__ = [
    "FileWrapper",
    "RequestTimeout",
    "SimpleServer",
    "__version__",
    "listen",
    "make_server",
    "run",
    "wrap_ssl",
]

WsgiApp = Callable[..., Any]


def _settings_argv(options: dict[str, Any]) -> list[str]:
    """Turn keyword options into command-line flags, so a setting is declared once (in Rust).

    An unknown keyword is a ``TypeError`` naming it (and the closest setting); a switch takes
    ``True`` or ``False``; ``None`` means "the default".
    """
    known = dict(_ferrogate.setting_names())
    argv: list[str] = []
    for name, value in options.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"ferrogate.run() got an unknown setting {name!r}{hint}")
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if known[name]:
            if not isinstance(value, bool):
                raise TypeError(f"setting {name!r} is a switch: pass True or False, not {value!r}")
            if value:
                argv.append(flag)
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            argv.extend([flag, str(item)])
    return argv


def run(
    app: WsgiApp,
    bind: str | list[str] | None = None,
    workers: Optional[int] = None,
    threads: Optional[int] = None,
    **options: Any,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT, like the ``ferrogate`` command.

    ``bind`` is one address or a list (``host:port``, ``[::1]:port``, ``unix:/path``).
    Any other command-line setting is accepted as a keyword (``access_log="-"``,
    ``graceful_timeout=10``, ``debug=True``). A setting not given here comes, as for the
    command, from ``FERROGATE_*`` variables, then a config file in the working directory
    (``ferrogate.toml`` or ``[tool.ferrogate]`` in ``pyproject.toml``), then the default
    (``127.0.0.1:8000``, one worker). With ``workers > 1`` the app object is shared by fork,
    as with gunicorn's ``--preload``.
    """
    settings = dict(bind=bind, workers=workers, threads=threads, **options)
    argv = ["ferrogate", *_settings_argv(settings)]
    code = _ferrogate.run(app, argv)
    if code:
        raise SystemExit(code)


def make_server(
    host: str,
    port: int,
    app: WsgiApp,
    server_class: Any = None,
    handler_class: Any = None,
    *,
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
) -> SimpleServer:
    """Create a server for ``app`` on ``host:port``, as ``wsgiref.simple_server.make_server`` does.

    The socket is bound at once (``port=0`` picks a free port; see ``server_address``).
    ``server_class`` and ``handler_class`` are accepted for signature compatibility and ignored:
    ferrogate's HTTP handling is not customised by subclassing. With ``certfile`` (PEM, the
    certificate then its chain) and ``keyfile`` (its key; default: the key in ``certfile``)
    it serves https; a file that does not load raises ``ValueError`` naming it.
    """
    del server_class, handler_class
    return _ferrogate.SimpleServer(host, port, app, certfile, keyfile)


def listen(
    addr: Any,
    family: int = socket.AF_INET,
    backlog: int = 50,
    reuse_addr: bool = True,
    reuse_port: Optional[bool] = None,
) -> socket.socket:
    """A bound, listening socket, as ``eventlet.listen`` makes one, for ``ferrogate.wsgi.server``.

    ``addr`` is ``(host, port)`` (or a path with ``family=socket.AF_UNIX``). ``reuse_addr``
    sets SO_REUSEADDR; ``reuse_port`` (default: on where the platform has it, as eventlet)
    sets SO_REUSEPORT.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if family != socket.AF_UNIX:
            if reuse_addr:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port is None:
                reuse_port = hasattr(socket, "SO_REUSEPORT")
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


class SSLListener:
    """What :func:`wrap_ssl` returns: the listening socket and the TLS files for it.

    ``ferrogate.wsgi.server`` serves it with TLS (rustls: Python's ``ssl`` module is not
    involved, and the handshake runs on ferrogate's I/O thread).
    """

    def __init__(self, sock: socket.socket, flags: list[str]) -> None:
        self.sock = sock
        #: The command-line settings that turn TLS on for this socket.
        self.tls_flags = flags

    def fileno(self) -> int:
        return self.sock.fileno()

    def getsockname(self) -> Any:
        return self.sock.getsockname()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "SSLListener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def wrap_ssl(
    sock: socket.socket,
    certfile: Optional[str] = None,
    keyfile: Optional[str] = None,
    server_side: bool = True,
    cert_reqs: Optional[int] = None,
    ssl_version: Any = None,
    ca_certs: Optional[str] = None,
    do_handshake_on_connect: bool = True,
    suppress_ragged_eofs: bool = True,
    ciphers: Optional[str] = None,
) -> SSLListener:
    """``eventlet.wrap_ssl`` for a listening socket given to ``ferrogate.wsgi.server``:
    ``certfile`` (PEM, the certificate then its chain), ``keyfile`` (default: the key in
    ``certfile``), ``ca_certs`` and ``cert_reqs`` (``ssl.CERT_NONE``, ``CERT_OPTIONAL``,
    ``CERT_REQUIRED``: client certificates), ``ciphers`` (rustls's names). ``ssl_version``,
    ``do_handshake_on_connect`` and ``suppress_ragged_eofs`` are accepted and ignored (TLS 1.2
    and 1.3 are served; see ``--ssl-min-version``). Only server sockets can be wrapped.
    """
    del ssl_version, do_handshake_on_connect, suppress_ragged_eofs
    if not server_side:
        raise ValueError("ferrogate.wrap_ssl wraps listening sockets only (server_side=True)")
    if not certfile:
        raise ValueError("ferrogate.wrap_ssl needs certfile")
    flags = ["--certfile", str(certfile)]
    if keyfile:
        flags += ["--keyfile", str(keyfile)]
    if ca_certs:
        flags += ["--ca-certs", str(ca_certs)]
    if cert_reqs is not None:
        flags += ["--cert-reqs", str(int(cert_reqs))]
    if ciphers:
        flags += ["--ciphers", ciphers]
    return SSLListener(sock, flags)

