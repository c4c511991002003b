"""Background load for supervisor tests: client threads sending requests over fresh
connections and recording every outcome with the time it started (`Load`); keep-alive
clients beside fresh-connection ones, as real clients are (`MixedLoad`); and `served_by`,
the pid of the worker that answers one request."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass

import requests


@dataclass
class Outcome:
    path: str
    started: float
    finished: float
    status: int | None = None
    answer: dict | None = None
    error: str | None = None


class Load:
    """``with Load(server, ["/", "/sleep?0.2"]) as load: ...``: one thread per path, each
    sending that path in a loop (a new connection per request) until the block ends."""

    def __init__(self, server, paths: list[str], timeout: float = 10.0):
        self.server = server
        self.paths = paths
        self.timeout = timeout
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(p,)) for p in paths]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _run(self, path: str) -> None:
        while not self._stop.is_set():
            outcome = Outcome(path, time.monotonic(), 0.0)
            try:
                resp = self.server.request("GET", path, timeout=self.timeout)
                outcome.status = resp.status
                outcome.answer = json.loads(resp.body) if resp.status == 200 else None
            except Exception as error:  # noqa: BLE001 (every failure is recorded and judged)
                outcome.error = repr(error)
            outcome.finished = time.monotonic()
            with self._lock:
                self.outcomes.append(outcome)

    def ok(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 200]

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def wait_for_answers(self, count: int, since: float, timeout: float = 10.0) -> None:
        """Wait until ``count`` requests that started after ``since`` have succeeded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                done = sum(1 for o in self.outcomes if o.started > since and o.status == 200)
            if done >= count:
                return
            time.sleep(0.02)
        raise AssertionError(f"fewer than {count} requests succeeded after t={since:.2f}")


class MixedLoad(Load):
    """``with MixedLoad(server, keep_alive=2, fresh=2) as load: ...``: ``keep_alive`` threads
    each send ``path`` in a loop on one ``requests.Session`` (keep-alive connections, reopened
    only when the server closes one), ``fresh`` threads each send it on a new ``http.client``
    connection every time. A request that fails is recorded, never retried."""

    def __init__(self, server, keep_alive: int = 2, fresh: int = 2, path: str = "/"):
        super().__init__(server, [path] * (keep_alive + fresh))
        self._threads = [
            threading.Thread(target=self._keep_alive, args=(path,)) for _ in range(keep_alive)
        ]
        self._threads += [threading.Thread(target=self._fresh, args=(path,)) for _ in range(fresh)]

    def _record(self, outcome: Outcome) -> None:
        outcome.finished = time.monotonic()
        with self._lock:
            self.outcomes.append(outcome)

    def _keep_alive(self, path: str) -> None:
        # Retries off (requests' default): a request on a connection the server closed fails.
        with requests.Session() as session:
            while not self._stop.is_set():
                outcome = Outcome(path, time.monotonic(), 0.0)
                try:
                    resp = session.get(self.server.url(path), timeout=self.timeout)
                    outcome.status = resp.status_code
                    outcome.answer = resp.json() if resp.status_code == 200 else None
                except Exception as error:  # noqa: BLE001 (every failure is recorded and judged)
                    outcome.error = repr(error)
                outcome.answer = (outcome.answer or {}) | {"client": "keep-alive"}
                self._record(outcome)

    def _fresh(self, path: str) -> None:
        while not self._stop.is_set():
            outcome = Outcome(path, time.monotonic(), 0.0)
            conn = http.client.HTTPConnection(
                self.server.host, self.server.port, timeout=self.timeout
            )
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                outcome.status = resp.status
                outcome.answer = json.loads(body) if resp.status == 200 else None
            except Exception as error:  # noqa: BLE001
                outcome.error = repr(error)
            finally:
                conn.close()
            outcome.answer = (outcome.answer or {}) | {"client": "fresh"}
            self._record(outcome)

    def keep_alive_connections(self) -> int:
        """How many connections the keep-alive clients used (distinct client ports)."""
        return len({o.answer.get("port") for o in self.ok() if o.answer["client"] == "keep-alive"})


def served_by(server) -> int:
    """The pid of the worker that answers a GET / (apps that report their pid)."""
    resp = server.request("GET", "/", timeout=10)
    assert resp.status == 200, resp.text
    return json.loads(resp.body)["pid"]
