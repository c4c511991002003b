"""Server hooks: Python callables from a gunicorn-style config file, called at gunicorn's
moments with gunicorn's arguments where they make sense.

In a ``gunicorn.conf.py`` (or ``ferrogate.conf.py``) passed with ``-c``::

    def post_fork(server, worker):
        server.log.info("worker %s forked", worker.pid)

Supported: ``on_starting(server)``, ``when_ready(server)``, ``pre_fork(server, worker)``,
``post_fork(server, worker)``, ``post_worker_init(worker)``, ``worker_exit(server, worker)``,
``on_reload(server)``, ``child_exit(server, worker)``, ``nworkers_changed(server, new_value,
old_value)``, ``on_exit(server)``. ``server`` and ``worker`` are the small objects below,
not gunicorn's classes. A hook that raises is logged with its traceback; for ``on_starting`` and
``when_ready`` the error also stops the start (exit code 2).

Not offered, and refused by name when a config file defines them: ``pre_request`` and
``post_request`` (they would take the GIL for every request on the I/O path: wrap the app in
WSGI middleware instead), ``pre_exec`` (no re-exec upgrade yet), ``worker_int`` and
``worker_abort`` (a worker stopped by SIGINT or by ``--timeout`` runs no Python: the
timeout's SIGABRT makes faulthandler write every thread's stack instead).
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from typing import Any, Callable, Optional

#: The hooks this version calls, and the names of their arguments.
SUPPORTED = {
    "on_starting": ("server",),
    "when_ready": ("server",),
    "pre_fork": ("server", "worker"),
    "post_fork": ("server", "worker"),
    "post_worker_init": ("worker",),
    "worker_exit": ("server", "worker"),
    "on_reload": ("server",),
    "child_exit": ("server", "worker"),
    "nworkers_changed": ("server", "new_value", "old_value"),
    "pre_exec": ("server",),
    "on_exit": ("server",),
}

#: Hooks that stop the start when they raise.
FATAL = frozenset({"on_starting", "when_ready"})

_hooks: dict[str, Callable[..., Any]] = {}


class _ToErrorLog(logging.Handler):
    """Sends the hooks' log lines to ferrogate's error log, in its format."""

    def emit(self, record: logging.LogRecord) -> None:
        from . import _ferrogate

        try:
            _ferrogate.log_line(record.levelname, self.format(record))
        except Exception:  # noqa: BLE001 - logging must not raise into a hook
            self.handleError(record)


_logger = logging.getLogger("ferrogate.hooks")
_logger.addHandler(_ToErrorLog())
_logger.setLevel(logging.DEBUG)
_logger.propagate = False


class Server:
    """What a hook gets as ``server``: the master."""

    def __init__(self, settings: dict[str, Any]):
        #: The master's pid.
        self.pid = os.getpid()
        #: The effective settings, by name (``server.settings["workers"]``).
        self.settings = settings
        #: A ``logging.Logger`` whose lines go to ferrogate's error log.
        self.log = _logger

    def __repr__(self) -> str:
        return f"<ferrogate master {self.pid}>"


class Worker:
    """What a hook gets as ``worker``: one worker process (``pid`` is 0 in ``pre_fork``)."""

    def __init__(self, pid: int):
        self.pid = pid
        #: When the worker was forked (``time.time()``).
        self.started = time.time()
        self.log = _logger

    def __repr__(self) -> str:
        return f"<ferrogate worker {self.pid}>"


_server: Optional[Server] = None
_worker: Optional[Worker] = None


def install(hooks: dict[str, Callable[..., Any]], settings: dict[str, Any]) -> None:
    """Called by the master once the settings are loaded."""
    global _server
    _hooks.clear()
    _hooks.update(hooks)
    _server = Server(settings)


def run(name: str, worker_pid: int = 0) -> Optional[str]:
    """Calls hook ``name`` if the config defined it; returns the error text if it raised."""
    global _worker
    hook = _hooks.get(name)
    if name in ("pre_fork", "post_fork"):
        _worker = Worker(worker_pid if name == "pre_fork" else os.getpid())
    if hook is None:
        return None
    worker = Worker(worker_pid) if name == "child_exit" else _worker or Worker(os.getpid())
    return _call(name, hook, {"worker": worker})


def run_counts(name: str, new_value: int, old_value: int) -> Optional[str]:
    """Calls ``nworkers_changed``-style hooks with the two counts."""
    hook = _hooks.get(name)
    if hook is None:
        return None
    return _call(name, hook, {"new_value": new_value, "old_value": old_value})


def _call(name: str, hook: Callable[..., Any], given: dict[str, Any]) -> Optional[str]:
    arguments = {"server": _server or Server({}), **given}
    try:
        hook(*(arguments[arg] for arg in SUPPORTED[name]))
    except BaseException as error:  # noqa: BLE001 - a hook must never take the server down
        text = "".join(traceback.format_exception(error)).rstrip()
        return f"The {name} hook raised:\n{text}"
    return None
