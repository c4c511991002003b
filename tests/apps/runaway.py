"""Requests that run for ever, for --request-timeout: ``/spin`` computes in pure Python,
``/sleep`` calls ``time.sleep(60)`` (imported as ``from time import sleep``), ``/stream``
sends a first chunk and then sleeps; ``/`` answers at once. Each records whether its
``finally`` block and its body's ``close()`` ran, and what it caught; ``/events`` answers
that record as JSON."""

import json
import threading
from time import sleep

import ferrogate

_events: list[str] = []
_lock = threading.Lock()


def _note(event: str) -> None:
    with _lock:
        _events.append(event)


class _Body:
    """A response body whose close() is recorded."""

    def __init__(self, chunks, name):
        self._chunks = chunks
        self._name = name

    def __iter__(self):
        return iter(self._chunks)

    def close(self):
        _note(f"close {self._name}")


def _stream(name):
    yield b"first chunk\n"
    try:
        sleep(60)
    finally:
        _note(f"finally {name}")
    yield b"never\n"


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/events":
        body = json.dumps(_events).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Body(_stream("stream"), "stream")
    try:
        if path == "/spin":
            n = 0
            while True:
                n += 1
        elif path == "/sleep":
            sleep(60)
        elif path == "/swallow":
            try:
                sleep(60)
            except Exception:  # a RequestTimeout is not an Exception: not swallowed here
                _note("swallowed")
    except ferrogate.RequestTimeout:
        _note(f"caught {path}")
        raise
    finally:
        _note(f"finally {path}")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return _Body([b"done\n"], path)
