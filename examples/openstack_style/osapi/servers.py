"""The servers resource: index, show, create, update and delete, in memory, per project.
Version 2 adds ``links`` and ``metadata`` to each server, as API versions do."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import webob
import webob.exc

#: Servers by project, then id; ids count up from 1 in each process.
_SERVERS: dict[str, dict[str, dict[str, Any]]] = {}
_IDS = itertools.count(1)
_LOCK = threading.Lock()

MAX_NAME_LENGTH = 255


class ServersController:
    def __init__(self, version: int) -> None:
        self.version = version

    def _view(self, req: webob.Request, server: dict[str, Any]) -> dict[str, Any]:
        view = {"id": server["id"], "name": server["name"], "status": server["status"]}
        if self.version >= 2:
            view["metadata"] = server["metadata"]
            view["links"] = [
                {"rel": "self", "href": f"{req.application_url}/servers/{server['id']}"}
            ]
        return view

    def _servers(self, req: webob.Request) -> dict[str, dict[str, Any]]:
        return _SERVERS.setdefault(req.environ["osapi.project_id"], {})

    def _find(self, req: webob.Request, id: str) -> dict[str, Any]:
        server = self._servers(req).get(id)
        if server is None:
            raise webob.exc.HTTPNotFound(detail=f"Server {id} could not be found.")
        return server

    def _body(self, req: webob.Request) -> dict[str, Any]:
        if req.content_type != "application/json":
            raise webob.exc.HTTPUnsupportedMediaType(detail="Send application/json")
        try:
            body = json.loads(req.body or b"null")
        except ValueError:
            raise webob.exc.HTTPBadRequest(detail="Malformed request body") from None
        server = body.get("server") if isinstance(body, dict) else None
        if not isinstance(server, dict):
            raise webob.exc.HTTPBadRequest(detail="The body must be {\"server\": {...}}")
        return server

    def _name(self, server: dict[str, Any]) -> str:
        name = server.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            raise webob.exc.HTTPBadRequest(
                detail=f"name must be a string of 1 to {MAX_NAME_LENGTH} characters"
            )
        return name

    def index(self, req: webob.Request) -> dict[str, Any]:
        servers = sorted(self._servers(req).values(), key=lambda s: int(s["id"]))
        return {"servers": [self._view(req, s) for s in servers]}

    def show(self, req: webob.Request, id: str) -> dict[str, Any]:
        return {"server": self._view(req, self._find(req, id))}

    def create(self, req: webob.Request) -> tuple[int, dict[str, Any]]:
        body = self._body(req)
        name = self._name(body)
        metadata = body.get("metadata", {})
        if not isinstance(metadata, dict):
            raise webob.exc.HTTPBadRequest(detail="metadata must be an object")
        with _LOCK:
            server = {"id": str(next(_IDS)), "name": name, "status": "ACTIVE",
                      "metadata": metadata}
            self._servers(req)[server["id"]] = server
        return 202, {"server": self._view(req, server)}

    def update(self, req: webob.Request, id: str) -> dict[str, Any]:
        server = self._find(req, id)
        body = self._body(req)
        if "name" in body:
            server["name"] = self._name(body)
        return {"server": self._view(req, server)}

    def delete(self, req: webob.Request, id: str) -> int:
        self._find(req, id)
        with _LOCK:
            self._servers(req).pop(id, None)
        return 204
