"""A noauth-style filter, like nova's ``NoAuthMiddleware``: any ``X-Auth-Token`` is accepted
and the project comes from ``X-Auth-Project-Id``; without a token, 401."""

from __future__ import annotations

from typing import Any, Callable

import webob.dec

from .faults import fault


class NoAuth:
    def __init__(self, application: Callable[..., Any], default_project: str) -> None:
        self.application = application
        self.default_project = default_project

    @classmethod
    def factory(cls, global_conf: Any, **local_conf: Any) -> Callable[[Any], "NoAuth"]:
        """``paste.filter_factory``: ``default_project`` when the header names none."""
        project = local_conf.get("default_project", "admin")
        return lambda app: cls(app, project)

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> Any:
        if "X-Auth-Token" not in req.headers:
            return fault(401, "Authentication required: send an X-Auth-Token header")
        req.environ["osapi.project_id"] = req.headers.get(
            "X-Auth-Project-Id", self.default_project
        )
        return req.get_response(self.application)
