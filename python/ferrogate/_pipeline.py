"""Builds the layers the middleware settings declare (``--mount``, ``--forward``, ``--static``,
``--allow``,
``--deny``, ``--rate-limit``, ``--request-id``, ``--compress``) around the app, as
``ferrogate.middleware`` objects, in the documented order: request id, IP filter, rate limit,
static files, compression, mount, app. Called by the server (src/python/middleware)."""

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
