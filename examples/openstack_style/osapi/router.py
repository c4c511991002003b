"""The versioned APIs: a routes ``Mapper`` whose ``resource()`` routes name a controller and
an action, and a webob ``wsgify`` dispatcher that calls it and writes JSON (nova's
``APIRouter`` and ``Resource``); and the versions document served at ``/``."""

from __future__ import annotations

import json
from typing import Any, Callable

import routes
import routes.middleware
import webob
import webob.dec
import webob.exc

from .faults import fault
from .servers import ServersController

VERSIONS = [
    {"id": "v1.0", "status": "DEPRECATED", "links": [{"rel": "self", "href": "/v1/"}]},
    {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": "/v2/"}]},
]


def _json(status: int, body: Any) -> webob.Response:
    return webob.Response(
        status=status,
        content_type="application/json",
        charset="utf-8",
        body=json.dumps(body, sort_keys=True).encode(),
    )


class Resource:
    """Calls the routed action of a controller with the URL's arguments; the action returns a
    body, ``(status, body)`` or a bare status (204)."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> Any:
        args = dict(req.environ["wsgiorg.routing_args"][1])
        for key in ("controller", "format"):
            args.pop(key, None)
        action = getattr(self.controller, args.pop("action"))
        try:
            result = action(req, **args)
        except webob.exc.HTTPException as exc:
            # A controller's refusal as the JSON fault clients parse (nova's Fault).
            return fault(exc.code, exc.detail or exc.explanation)
        if isinstance(result, int):
            return webob.Response(status=result)
        status, body = result if isinstance(result, tuple) else (200, result)
        return _json(status, body)


class APIRouter:
    """One API version: ``/servers`` CRUD and the version's own document at ``/``."""

    def __init__(self, version: int) -> None:
        self.map = routes.Mapper()
        self.map.resource("server", "servers", controller=Resource(ServersController(version)))
        self.map.connect("/", controller=Resource(_Version(version)), action="show",
                         conditions={"method": ["GET"]})
        self._router = routes.middleware.RoutesMiddleware(self._dispatch, self.map)

    @classmethod
    def factory(cls, global_conf: Any, **local_conf: Any) -> "APIRouter":
        """``paste.app_factory``: ``version = 1`` or ``2``."""
        return cls(int(local_conf.get("version", "2")))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # /v2 (no slash) is the version's document too, as /v2/ is.
        environ["PATH_INFO"] = environ.get("PATH_INFO") or "/"
        return self._router(environ, start_response)

    @staticmethod
    @webob.dec.wsgify
    def _dispatch(req: webob.Request) -> Any:
        match = req.environ["wsgiorg.routing_args"][1]
        if not match:
            return fault(404, f"No route for {req.method} {req.path_info}")
        return match["controller"]


class _Version:
    def __init__(self, version: int) -> None:
        self.version = version

    def show(self, req: webob.Request) -> dict[str, Any]:
        return {"version": VERSIONS[self.version - 1]}


@webob.dec.wsgify
def versions(req: webob.Request) -> webob.Response:
    """``/``: every version, as nova's versions resource lists them."""
    if req.path_info not in ("", "/"):
        return fault(404, f"No API at {req.path_info}")
    return _json(200, {"versions": VERSIONS})


def versions_factory(global_conf: Any, **local_conf: Any) -> Any:
    """``paste.app_factory`` for the versions document."""
    return versions
