"""What the end-to-end benchmark runs: a Scenario (one kind of request and the app that answers
it) and a Server (how to start one peer). Declared here once so that bench.py (the driver and
the classic rows) and middleware_scenarios.py (the ferrogate.middleware rows) build the same
types; this module knows nothing of wrk, processes or reporting.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Optional

HOST = "127.0.0.1"


@dataclass
class Scenario:
    name: str
    app: str  # attribute of apps.py, or "module:attr"
    title: str
    wrk_args: list = field(default_factory=list)
    method: str = "GET"
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    check: Callable[[int, bytes], Optional[str]] = None  # returns an error or None
    path: str = "/"  # the URL path wrk and the check request ask for
    # The status every measured response must have. A refusal row (403, 429) expects only
    # non-2xx answers, so there a 2xx/3xx answer is the error wrk's count flags.
    status: int = 200
    # The servers that run this scenario; None: every server that is not `opt_in`.
    servers: Optional[tuple] = None
    # Per server: the app it loads instead of `app` (a peer's own middleware, or ferrogate's
    # native one), extra argv after its executable (a peer's static-file flags), and what
    # that peer runs, appended to its label in the tables.
    apps: dict = field(default_factory=dict)
    server_args: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    # Served over https: the servers get the scenario's certificate flags (server_args),
    # and wrk and the check request speak TLS (without verifying the test certificate).
    tls: bool = False
    # The load generator: "wrk" (HTTP/1), or "h2load" (HTTP/2 with prior knowledge; then
    # wrk_args are h2load's and the check request goes through curl --http2-prior-knowledge).
    load: str = "wrk"

    def runs_on(self, server: "Server") -> bool:
        return server.name in self.servers if self.servers else not server.opt_in

    def app_for(self, server: str) -> str:
        return self.apps.get(server, self.app if ":" in self.app else f"apps:{self.app}")

    def label_for(self, server: "Server") -> str:
        extra = self.labels.get(server.name)
        return f"{server.label} + {extra}" if extra else server.label

    def wrong_responses(self, res: dict) -> int:
        """Responses of the wrong class in a wrk run: wrk counts only the non-2xx/3xx ones."""
        if self.status < 400:
            return res["non2xx"]
        return res["requests"] - res["non2xx"]


@dataclass
class Server:
    name: str
    label: str
    measure: str  # "workers" | "tree" | "self"
    argv: Callable[[str, int], list]  # (app spec "apps:attr", port) -> argv
    dist: Optional[str] = None  # pip distribution, for the version column
    python: str = sys.executable  # interpreter whose packages `dist` lives in
    version_argv: Optional[list] = None  # a non-Python server: the command printing its version
    opt_in: bool = False  # runs only in scenarios that name it (nginx: static files only)

    def missing(self) -> Optional[str]:
        exe = self.argv("apps:hello", 1)[0]
        if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
            return f"{exe} not found (not built/installed)"
        return None


def expect_body(expected: bytes):
    def check(status: int, body: bytes) -> Optional[str]:
        if status != 200:
            return f"status {status}"
        if body != expected:
            return f"body mismatch ({len(body)} bytes, expected {len(expected)})"
        return None

    return check


def expect_json(key: str, value):
    def check(status: int, body: bytes) -> Optional[str]:
        if status != 200:
            return f"status {status}: {body[:200]!r}"
        try:
            data = json.loads(body)
        except ValueError:
            return f"not JSON: {body[:80]!r}"
        if data.get(key) != value:
            return f"JSON {key}={data.get(key)!r}, expected {value!r}"
        return None

    return check


def expect_status(expected: int):
    def check(status: int, body: bytes) -> Optional[str]:
        return None if status == expected else f"status {status}, expected {expected}"

    return check
