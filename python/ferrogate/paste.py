"""paste.deploy entry points: ferrogate as a server, its native middleware as filters, and its
``Mount`` as a ``urlmap`` composite, for an ini file served by ``ferrogate --paste``,
``pserve`` or any server that loads paste.deploy files (``gunicorn --paste``).

::

    [composite:main]
    use = egg:ferrogate#urlmap
    / = versions
    /v1 = api_v1

    [pipeline:api_v1]
    pipeline = requestid ipfilter ratelimit faultwrap api_app_v1

    [filter:requestid]
    use = egg:ferrogate#requestid

    [filter:ipfilter]
    use = egg:ferrogate#ipfilter
    allow = 127.0.0.1 10.0.0.0/8

    [filter:ratelimit]
    use = egg:ferrogate#ratelimit
    rate = 100/s
    burst = 200

    [server:main]
    use = egg:ferrogate
    bind = 127.0.0.1:8774
    workers = 2

Every option is an ini string, converted here (filters) or by the settings table (the
server). The filters build the objects of :mod:`ferrogate.middleware`, so a pipeline whose
outer filters are ferrogate's is lifted into the native request path when ferrogate serves it;
under another server they are plain WSGI middleware.
"""

from __future__ import annotations

import difflib
import os
import re
from typing import Any, Callable, Mapping, Optional

from . import _ferrogate, middleware, run

__all__ = [
    "compress_filter",
    "ipfilter_filter",
    "proxyheaders_filter",
    "ratelimit_filter",
    "requestid_filter",
    "server_factory",
    "server_runner",
    "static_filter",
    "urlmap",
]

WsgiApp = Callable[..., Any]
Filter = Callable[[WsgiApp], WsgiApp]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _bool(option: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"{option} = {value!r} is not a boolean (true/false, yes/no, on/off, 1/0)")


def _int(option: str, value: Any) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ValueError(f"{option} = {value!r} is not an integer") from None


def _float(option: str, value: Any) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ValueError(f"{option} = {value!r} is not a number") from None


def _list(value: Any) -> list[str]:
    """An ini list: items separated by whitespace, newlines or commas."""
    return [item for item in re.split(r"[\s,]+", str(value)) if item]


def _path(global_conf: Mapping[str, Any], value: str) -> str:
    """A path in the ini, relative to the ini's directory (paste.deploy's ``here``)."""
    here = global_conf.get("here") or os.getcwd()
    return os.path.join(here, os.path.expanduser(value.strip()))


def _refuse_unknown(use: str, options: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for option in options:
        close = difflib.get_close_matches(option, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"{use} has no option {option!r}{hint}; it takes {', '.join(known)}"
        )


# -- filters ---------------------------------------------------------------------------


def static_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#static``: every option starting with ``/`` mounts a directory
    (``/static = %(here)s/public``; relative to the ini's directory), plus ``max_age``,
    ``index``, ``follow_symlinks``, ``allow_dotfiles``, ``precompressed`` and
    ``immutable_hashed`` as :class:`ferrogate.middleware.StaticFiles` takes them."""
    directories = {
        key: _path(global_conf, value) for key, value in options.items() if key.startswith("/")
    }
    rest = {key: value for key, value in options.items() if not key.startswith("/")}
    keywords: dict[str, Any] = {}
    if "max_age" in rest:
        keywords["max_age"] = _int("max_age", rest.pop("max_age"))
    for name in ("index", "follow_symlinks", "allow_dotfiles", "precompressed",
                 "immutable_hashed"):
        if name in rest:
            keywords[name] = _bool(name, rest.pop(name))
    _refuse_unknown(
        "egg:ferrogate#static",
        rest,
        ("/PREFIX", "max_age", "index", "follow_symlinks", "allow_dotfiles", "precompressed",
         "immutable_hashed"),
    )
    if not directories:
        raise ValueError("egg:ferrogate#static needs a directory: /static = %(here)s/public")
    return lambda app: middleware.StaticFiles(app, directories, **keywords)


def ipfilter_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#ipfilter``: ``allow`` and ``deny`` (addresses, CIDR ranges and
    ``unix``, separated by spaces, commas or lines), ``allow_file`` and ``deny_file``."""
    keywords: dict[str, Any] = {}
    for name in ("allow", "deny"):
        if name in options:
            keywords[name] = _list(options.pop(name))
    for name in ("allow_file", "deny_file"):
        if name in options:
            keywords[name] = _path(global_conf, options.pop(name))
    _refuse_unknown(
        "egg:ferrogate#ipfilter", options, ("allow", "deny", "allow_file", "deny_file")
    )
    middleware.IPFilter(_never_called, **keywords)  # a bad range fails at load time
    return lambda app: middleware.IPFilter(app, **keywords)


def ratelimit_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#ratelimit``: ``rate`` (``100/s``, ``1000/min``), ``burst``, ``key``
    (``client_ip`` or ``header:X-Api-Key``), ``slots``, ``store`` (``redis://host:6379/0``),
    ``redis_timeout`` (seconds) and ``fail`` (``open`` or ``closed``)."""
    del global_conf
    if "rate" not in options:
        raise ValueError("egg:ferrogate#ratelimit needs a rate: rate = 100/s")
    rate = options.pop("rate").strip()
    keywords: dict[str, Any] = {}
    for name in ("burst", "slots"):
        if name in options:
            keywords[name] = _int(name, options.pop(name))
    for name in ("key", "store"):
        if name in options:
            keywords[name] = options.pop(name).strip()
    if "redis_timeout" in options:
        keywords["redis_timeout"] = _float("redis_timeout", options.pop("redis_timeout"))
    if "fail" in options:
        fail = options.pop("fail").strip()
        if fail not in ("open", "closed"):
            raise ValueError(f"fail = {fail!r}: it is open or closed")
        keywords["fail_open"] = fail == "open"
    _refuse_unknown(
        "egg:ferrogate#ratelimit",
        options,
        ("rate", "burst", "key", "slots", "store", "redis_timeout", "fail"),
    )
    return lambda app: middleware.RateLimit(app, rate, **keywords)


def requestid_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#requestid``: ``trusted``, the peers whose ``X-Request-ID`` is kept
    (addresses and CIDR ranges; default this host)."""
    del global_conf
    trusted = _list(options.pop("trusted")) if "trusted" in options else None
    _refuse_unknown("egg:ferrogate#requestid", options, ("trusted",))
    return lambda app: middleware.RequestId(app, trusted=trusted)


def proxyheaders_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#proxyheaders``: ``trusted``, the proxies whose ``Forwarded`` and
    ``X-Forwarded-*`` headers are believed (addresses, CIDR ranges and ``unix``; none by
    default: an empty list trusts nobody), and ``headers``, the ones honoured (default all of
    ``Forwarded X-Forwarded-For X-Forwarded-Proto X-Forwarded-Ssl X-Forwarded-Host
    X-Forwarded-Port``)."""
    del global_conf
    keywords: dict[str, Any] = {"trusted": _list(options.pop("trusted", ""))}
    if "headers" in options:
        keywords["headers"] = _list(options.pop("headers"))
    _refuse_unknown("egg:ferrogate#proxyheaders", options, ("trusted", "headers"))
    middleware.ProxyHeaders(_never_called, **keywords)  # a bad range or name fails at load time
    return lambda app: middleware.ProxyHeaders(app, **keywords)


def compress_filter(global_conf: Mapping[str, Any], **options: str) -> Filter:
    """``egg:ferrogate#compress``: ``min_size`` (bytes), ``level`` and ``encodings`` (the
    server's preference among ``br``, ``zstd`` and ``gzip``)."""
    del global_conf
    keywords: dict[str, Any] = {}
    for name in ("min_size", "level"):
        if name in options:
            keywords[name] = _int(name, options.pop(name))
    if "encodings" in options:
        keywords["encodings"] = _list(options.pop("encodings"))
    _refuse_unknown("egg:ferrogate#compress", options, ("min_size", "level", "encodings"))
    middleware.Compress(_never_called, **keywords)  # an unknown coding fails at load time
    return lambda app: middleware.Compress(app, **keywords)


def forward(global_conf: Mapping[str, Any], upstreams: str, **options: str) -> WsgiApp:
    """``use = egg:ferrogate#forward`` in an ``[app:...]`` section: ``upstreams`` (URLs
    separated by spaces, commas or new lines) and any keyword of
    :class:`ferrogate.middleware.Forward` as a key (``strategy = least_conn``,
    ``strip_prefix = true``, ``timeout = 5``)."""
    from ._pipeline import _option_value

    urls = [url for url in re.split(r"[\s,]+", upstreams) if url]
    keywords: dict[str, Any] = {name: _option_value(value) for name, value in options.items()}
    if "health" in keywords:
        keywords["health"] = str(keywords["health"])
    return middleware.Forward(urls, **keywords)


def _never_called(environ: Any, start_response: Any) -> Any:
    raise AssertionError("a filter checked at load time never serves")


# -- urlmap ----------------------------------------------------------------------------


def _mount_key(expression: str) -> str:
    """Paste urlmap's key syntax (``/v1``, ``domain api.example.com [port 8080] /v1``,
    ``http://api.example.com[:8080]/v1``) as a :class:`~ferrogate.middleware.Mount` key."""
    parts = expression.split()
    if len(parts) == 1 and re.match(r"https?://", parts[0], re.IGNORECASE):
        return parts[0]
    domain: Optional[str] = None
    port: Optional[str] = None
    path: Optional[str] = None
    while parts:
        word = parts.pop(0)
        if word == "domain":
            if not parts or domain:
                raise ValueError(f"urlmap key {expression!r}: 'domain' takes one host name")
            domain = parts.pop(0)
        elif word == "port":
            if not parts or port:
                raise ValueError(f"urlmap key {expression!r}: 'port' takes one port number")
            port = parts.pop(0)
        elif path is None:
            path = word
        else:
            raise ValueError(f"urlmap key {expression!r} names more than one path")
    path = path or "/"
    if not path.startswith("/"):
        raise ValueError(f"urlmap key {expression!r}: a path starts with '/'")
    if port and not domain:
        # Paste's rule: a port belongs to a domain.
        raise ValueError(f"urlmap key {expression!r}: 'port' needs a 'domain'")
    host = f"{domain}:{port}" if port else domain
    return f"domain:{host}{path}" if host else path


def urlmap(loader: Any, global_conf: Mapping[str, Any], **local_conf: str) -> WsgiApp:
    """``egg:ferrogate#urlmap``: Paste's urlmap (path keys, ``domain HOST [port N] /path``
    and ``http://host[:port]/path`` keys, ``not_found_app``) built as the native
    :class:`~ferrogate.middleware.Mount`."""
    not_found = local_conf.pop("not_found_app", None) or global_conf.get("not_found_app")
    default = loader.get_app(not_found, global_conf=global_conf) if not_found else None
    apps = {
        _mount_key(key): loader.get_app(name.strip(), global_conf=global_conf)
        for key, name in map(_url_key, local_conf.items())
    }
    return middleware.Mount(apps, default=default)


def _url_key(option: tuple[str, str]) -> tuple[str, str]:
    """The ini parser splits ``http://host/v1 = app`` at its first ``:``, into the option
    ``http`` and the value ``//host/v1 = app``: joined again here."""
    key, value = option
    if key.lower() in ("http", "https") and value.startswith("//") and "=" in value:
        rest, _, name = value.rpartition("=")
        return f"{key}:{rest.strip()}", name
    return option


# -- the server ------------------------------------------------------------------------


def _setting_kinds() -> dict[str, str]:
    """Each setting's keyword name and kind: ``switch``, ``list`` or ``value``."""
    kinds = {}
    for row in _ferrogate.settings_table():
        long = next((f for f in row["flags"] if f.startswith("--")), None)
        if long is None or row["hidden"]:
            continue
        kind = "switch" if row["switch"] else "list" if row["list"] else "value"
        kinds[long[2:].replace("-", "_")] = kind
    return kinds


#: Options a [server:main] section of another server commonly has, and what they become.
_ADDRESS_OPTIONS = ("host", "port", "listen")


def settings_from_ini(local_conf: Mapping[str, str]) -> dict[str, Any]:
    """A ``[server:...]`` section's options as ``ferrogate.run`` keywords: every setting by its
    name (``workers = 4``, ``access-log = -``), switches as ini booleans, lists separated by
    spaces or lines; ``host`` and ``port`` (or waitress's ``listen``) become ``bind``. The
    values are checked by the settings table when the server starts."""
    kinds = _setting_kinds()
    options: dict[str, Any] = {}
    binds: list[str] = []
    for key, value in local_conf.items():
        name = key.strip().replace("-", "_")
        if name in _ADDRESS_OPTIONS:
            continue
        kind = kinds.get(name)
        if kind is None:
            close = difflib.get_close_matches(name, list(kinds), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"egg:ferrogate has no setting {key!r}{hint}")
        if kind == "switch":
            options[name] = _bool(key, value)
        elif kind == "list":
            options[name] = _list(value) if name != "env" else str(value).split()
        else:
            options[name] = str(value).strip()
    if "listen" in local_conf:
        binds += _list(local_conf["listen"])
    if "host" in local_conf or "port" in local_conf:
        host = local_conf.get("host", "127.0.0.1").strip()
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        binds.append(f"{host}:{local_conf.get('port', '8000').strip()}")
    if binds:
        options["bind"] = [*binds, *options.get("bind", [])]
    return options


def server_runner(wsgi_app: WsgiApp, global_conf: Mapping[str, Any], **local_conf: str) -> None:
    """``paste.server_runner`` (``[server:main] use = egg:ferrogate``): serve ``wsgi_app``
    with the section's settings until stopped, as ``pserve`` expects."""
    del global_conf
    _serve(wsgi_app, settings_from_ini(local_conf))


def server_factory(global_conf: Mapping[str, Any], **local_conf: str) -> Callable[[WsgiApp], None]:
    """``paste.server_factory``: the section's settings checked now, the server started when
    the returned callable is given the app."""
    del global_conf
    options = settings_from_ini(local_conf)
    return lambda app: _serve(app, options)


class ServerExit(RuntimeError):
    """ferrogate stopped with a non-zero exit code under a paste.deploy runner."""


def _serve(app: WsgiApp, options: dict[str, Any]) -> None:
    try:
        run(app, **options)
    except SystemExit as exc:
        # pserve reports a SystemExit and then exits 0; a server that could not start must
        # not look like a clean stop to systemd.
        raise ServerExit(f"ferrogate exited with code {exc.code}; the reason is above") from None
