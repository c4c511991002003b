"""Reading a gunicorn-style Python config file (``-c gunicorn.conf.py``).

The file is executed, and its module-level names are handed to the Rust settings layer, which
maps gunicorn's names to ferrogate's and refuses what it does not know. Like gunicorn, names
that start with ``_``, modules, classes and functions are left out (helpers and imports are
fine), except functions under gunicorn's hook names, which are handed over so that an
unsupported hook is refused rather than silently ignored. ALL-CAPS names are taken as the
file's own constants and left out too, and so is a name set to ``None`` (gunicorn's "not
set", as in ``accesslog = None``).
"""

from __future__ import annotations

import ast
import inspect
import runpy
from typing import Any, Callable

from .hooks import SUPPORTED as SUPPORTED_HOOKS

#: gunicorn's server hooks (https://docs.gunicorn.org/en/stable/settings.html#server-hooks).
HOOK_NAMES = frozenset(
    "on_starting on_reload when_ready pre_fork post_fork post_worker_init worker_int "
    "worker_abort pre_exec pre_request post_request child_exit worker_exit nworkers_changed "
    "on_exit ssl_context".split()
)


def _assignment_lines(source: str) -> dict[str, int]:
    """Line of the last top-level assignment (or def) of each name."""
    lines: dict[str, int] = {}
    for node in ast.parse(source).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets = [node.target]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines[node.name] = node.lineno
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    lines[name.id] = node.lineno
    return lines


def _plain(value: Any) -> Any:
    """A config value as bool, int, float, str or a list of them; anything else as its repr
    in a one-item tuple (the Rust side names its type in the error)."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return (f"a Python {type(value).__name__}",)


#: The supported hooks the last file read defined (the master installs them).
HOOKS: dict[str, Callable[..., Any]] = {}


def read(path: str) -> list[tuple[str, Any, int]]:
    """Execute the config file at ``path``; return its settings as (name, value, line), and
    keep its supported hooks in ``HOOKS``. A hook this version does not call is returned as
    an entry, so that the settings layer refuses it by name."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    lines = _assignment_lines(source)
    names = runpy.run_path(path, run_name="__config__")
    entries = []
    HOOKS.clear()
    for name, value in names.items():
        if name in SUPPORTED_HOOKS and callable(value):
            HOOKS[name] = value
            continue
        if name.startswith("_") or name.isupper() or value is None:
            continue
        if inspect.ismodule(value) or inspect.isclass(value):
            continue
        if callable(value) and name not in HOOK_NAMES:
            continue
        shown = ("a function",) if callable(value) else _plain(value)
        entries.append((name, shown, lines.get(name, 0)))
    entries.sort(key=lambda entry: entry[2])
    return entries
