"""Builds the layers the middleware settings declare (``--mount``, ``--forward``, ``--static``,
``--allow``, ``--deny``, ``--rate-limit``, ``--request-id``, ``--compress``) around the app, as
``ferrogate.middleware`` objects, in the documented order: request id, IP filter, rate limit,
static files, compression, mount, app; or, with ``--pipeline`` (``[[pipeline]]`` tables), the
wrapping layers in the order given, around the mount. Called by the server
(src/python/middleware); the layer syntax is checked first by src/config/pipeline_layers.rs."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from . import _loader, middleware


def _pairs(items: Sequence[str]) -> list[tuple[str, str]]:
    return [(prefix, target) for prefix, _, target in (item.partition("=") for item in items)]


#: The options ``--mount`` takes after the app spec (src/config/middleware_settings.rs).
_MOUNT_OPTIONS = ("request_timeout",)


def _mount_options(target: str) -> tuple[str, dict[str, str]]:
    """``APP[,request_timeout=SECONDS]`` as (app spec, options). Options are taken from the
    end: an app spec may call a factory with commas in its arguments."""
    options: dict[str, str] = {}
    while "," in target:
        rest, _, option = target.rpartition(",")
        name, found, value = option.partition("=")
        if not found or name.strip() not in _MOUNT_OPTIONS:
            break
        options[name.strip()] = value.strip()
        target = rest
    return target.strip(), options


#: The options ``--rate-limit`` takes after the rate, as its error message lists them.
_RATE_LIMIT_OPTIONS = (
    "burst=N, key=client_ip|header:NAME, store=redis://HOST:PORT/DB, "
    "fail=open|closed or redis_timeout=SECONDS"
)


def _rate_limit(app: Any, spec: str) -> Any:
    """``100/s[,burst=200][,key=client_ip|header:X-Api-Key][,store=redis://h:6379/0]
    [,fail=open|closed][,redis_timeout=0.05]``."""
    rate, *options = [part.strip() for part in spec.split(",")]
    keywords: dict[str, Any] = {}
    for option in options:
        name, sep, value = option.partition("=")
        if not sep:
            name = ""
        if name == "burst":
            keywords["burst"] = int(value)
        elif name in ("key", "store"):
            keywords[name] = value
        elif name == "redis_timeout":
            keywords["redis_timeout"] = float(value)
        elif name == "fail" and value in ("open", "closed"):
            keywords["fail_open"] = value == "open"
        else:
            raise ValueError(
                f"--rate-limit {spec!r}: {option!r} is not one of {_RATE_LIMIT_OPTIONS}"
            )
    return middleware.RateLimit(app, rate, **keywords)


def _option_value(text: str) -> Any:
    """An option of ``--forward`` as the keyword's type: a boolean, a number, or the text."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _forward(spec: str) -> tuple[str, Any]:
    """``/prefix=URL[,URL...][,option=value...]`` as (prefix, Forward)."""
    prefix, _, rest = spec.partition("=")
    upstreams: list[str] = []
    keywords: dict[str, Any] = {}
    for item in (part.strip() for part in rest.split(",")):
        if "://" in item or item.startswith("unix:"):
            upstreams.append(item)
        else:
            name, _, value = item.partition("=")
            keywords[name] = _option_value(value)
    if "health" in keywords:
        keywords["health"] = str(keywords["health"])
    try:
        return prefix, middleware.Forward(upstreams, **keywords)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--forward {spec!r}: {error}") from None


def _flag(option: str, value: str) -> bool:
    if value in ("true", "false"):
        return value == "true"
    raise ValueError(f"{option}={value!r}: write true or false")


def _layer(app: Any, spec: str, request_id_trusted: Optional[str]) -> Any:
    """One ``--pipeline`` value (``KIND`` or ``KIND:name=value,...``) around ``app``."""
    kind, _, rest = spec.partition(":")
    options: dict[str, list[str]] = {}
    directories: dict[str, str] = {}
    for item in (part.strip() for part in rest.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        if name.startswith("/"):
            directories[name] = value
        else:
            options.setdefault(name, []).append(value)

    def last(name: str) -> Optional[str]:
        return options[name][-1] if name in options else None

    def number(name: str) -> Optional[int]:
        value = last(name)
        return None if value is None else int(value)

    try:
        if kind == "request_id":
            return middleware.RequestId(app, trusted=request_id_trusted)
        if kind == "ip_filter":
            return middleware.IPFilter(
                app, allow=options.get("allow"), deny=options.get("deny"),
                allow_file=last("allow_file"), deny_file=last("deny_file"),
            )
        if kind == "rate_limit":
            keywords: dict[str, Any] = {"key": last("key") or "client_ip"}
            if "burst" in options:
                keywords["burst"] = number("burst")
            if "slots" in options:
                keywords["slots"] = number("slots")
            if "store" in options:
                keywords["store"] = last("store")
            if "redis_timeout" in options:
                keywords["redis_timeout"] = float(options["redis_timeout"][-1])
            if "fail" in options:
                fail = options["fail"][-1]
                if fail not in ("open", "closed"):
                    raise ValueError(f"fail={fail!r}: write open or closed")
                keywords["fail_open"] = fail == "open"
            return middleware.RateLimit(app, options["rate"][-1], **keywords)
        if kind == "static":
            flags = {
                name: _flag(name, options[name][-1])
                for name in ("index", "follow_symlinks", "allow_dotfiles", "precompressed",
                             "immutable_hashed")
                if name in options
            }
            return middleware.StaticFiles(app, directories, max_age=number("max_age"), **flags)
        if kind == "compress":
            compress: dict[str, Any] = {}
            if "min_size" in options:
                compress["min_size"] = number("min_size")
            if "level" in options:
                compress["level"] = number("level")
            if "encodings" in options:
                compress["encodings"] = options["encodings"]
            return middleware.Compress(app, **compress)
    except (TypeError, ValueError) as error:
        raise ValueError(f"--pipeline {spec!r}: {error}") from None
    raise ValueError(f"--pipeline {spec!r}: {kind!r} is not a layer")


def build(
    app: Any,
    *,
    mounts: Sequence[str] = (),
    forwards: Sequence[str] = (),
    statics: Sequence[str] = (),
    static_max_age: Optional[int] = None,
    allow: str = "",
    deny: str = "",
    allow_file: Optional[str] = None,
    deny_file: Optional[str] = None,
    rate_limit: Optional[str] = None,
    request_id: bool = False,
    request_id_trusted: Optional[str] = None,
    compress: bool = False,
    pipeline: Sequence[str] = (),
) -> Any:
    if mounts or forwards:
        apps: dict[str, Any] = {}
        timeouts: dict[str, float] = {}
        for prefix, target in _pairs(mounts):
            spec, options = _mount_options(target)
            apps[prefix] = _loader.load(spec)
            if "request_timeout" in options:
                timeouts[prefix] = float(options["request_timeout"])
        apps.update(_forward(spec) for spec in forwards)
        app = middleware.Mount(apps, default=app, request_timeouts=timeouts or None)
    for spec in reversed(pipeline):
        app = _layer(app, spec, request_id_trusted)
    if compress:
        app = middleware.Compress(app)
    if statics:
        app = middleware.StaticFiles(app, dict(_pairs(statics)), max_age=static_max_age)
    if rate_limit:
        app = _rate_limit(app, rate_limit)
    if allow or deny or allow_file or deny_file:
        app = middleware.IPFilter(
            app, allow=allow or None, deny=deny or None, allow_file=allow_file,
            deny_file=deny_file,
        )
    if request_id:
        app = middleware.RequestId(app, trusted=request_id_trusted)
    return app
