"""Background load for supervisor tests: client threads sending requests over fresh
connections and recording every outcome with the time it started; and `served_by`, the pid
of the worker that answers one request."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass


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


def served_by(server) -> int:
    """The pid of the worker that answers a GET / (apps that report their pid)."""
    resp = server.request("GET", "/", timeout=10)
    assert resp.status == 200, resp.text
    return json.loads(resp.body)["pid"]
