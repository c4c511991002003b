"""JSON faults as nova's API writes them (``{"itemNotFound": {"code": 404, "message": ...}}``),
and the fault wrapper filter that turns any exception escaping the API into a 500 fault."""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import webob
import webob.dec
import webob.exc

LOG = logging.getLogger(__name__)

#: The JSON key nova's API uses for each status.
FAULT_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    500: "computeFault",
}


def fault(status: int, message: str) -> webob.Response:
    """A JSON fault response."""
    name = FAULT_NAMES.get(status, "computeFault")
    body = {name: {"code": status, "message": message}}
    return webob.Response(
        status=status,
        content_type="application/json",
        charset="utf-8",
        body=json.dumps(body, sort_keys=True).encode(),
    )


class FaultWrapper:
    """Calls the next app; a webob HTTP error becomes its JSON fault, anything else a 500."""

    def __init__(self, application: Callable[..., Any]) -> None:
        self.application = application

    @classmethod
    def factory(cls, global_conf: Any, **local_conf: Any) -> Callable[[Any], "FaultWrapper"]:
        """``paste.filter_factory``."""
        return cls

    @webob.dec.wsgify
    def __call__(self, req: webob.Request) -> Any:
        try:
            return req.get_response(self.application)
        except webob.exc.HTTPException as exc:
            return fault(exc.code, exc.explanation if not exc.detail else exc.detail)
        except Exception:
            LOG.exception("Caught error on %s %s", req.method, req.path)
            return fault(500, "The server has either erred or is incapable of performing "
                              "the requested operation.")
