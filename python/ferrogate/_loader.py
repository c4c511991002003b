"""Turns an app spec (``module:attr``, ``module:factory()``, ``file.py:attr``,
``config:api-paste.ini#name``) into a callable."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from typing import Any, Sequence

DEFAULT_ATTRIBUTES = ("application", "app")


class AppLoadError(Exception):
    """The app spec could not be turned into a WSGI callable; the message says why."""


def prepare_path(
    chdir: str | None, pythonpath: Sequence[str], env: Sequence[str] = ()
) -> None:
    """Apply --env, --chdir and --pythonpath, and put the working directory on sys.path like
    gunicorn. ``env`` holds ``KEY=VALUE`` pairs (checked by the settings layer)."""
    for pair in env:
        key, _, value = pair.partition("=")
        os.environ[key] = value
    if chdir:
        os.chdir(chdir)
    for entry in reversed(list(pythonpath)):
        sys.path.insert(0, os.path.abspath(entry))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _import_file(path: str) -> Any:
    name = os.path.splitext(os.path.basename(path))[0]
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AppLoadError(f"cannot import {path!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _split(spec: str) -> tuple[str, str | None]:
    # "C:\\x.py" does not occur on the platforms we serve on, so the last ":" splits.
    if ":" in spec:
        target, attr = spec.rsplit(":", 1)
        return target, attr or None
    return spec, None


def _call_factory(module: Any, expr: str) -> Any:
    """``factory()`` or ``factory(arg, key=value)`` with literal arguments, as gunicorn allows."""
    try:
        call = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise AppLoadError(f"{expr!r} is not an attribute name or a factory call") from exc
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise AppLoadError(f"{expr!r} is not an attribute name or a factory call")
    factory = getattr(module, call.func.id, None)
    if factory is None:
        raise AppLoadError(f"factory {call.func.id!r} not found in {module.__name__!r}")
    args = [ast.literal_eval(a) for a in call.args]
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    return factory(*args, **kwargs)


def load(spec: str) -> Any:
    """Import the module or file named by ``spec`` and return the WSGI callable it names;
    a ``config:FILE[#name]`` spec is a paste.deploy ini file, loaded by PasteDeploy."""
    if spec.startswith("config:"):
        from . import _paste

        return _paste.load_app(spec)
    target, attr = _split(spec)
    if target.endswith(".py") or os.sep in target:
        if not os.path.exists(target):
            raise AppLoadError(f"file {target!r} does not exist")
        module = _import_file(target)
    else:
        module = importlib.import_module(target)
    if attr is None:
        for name in DEFAULT_ATTRIBUTES:
            if hasattr(module, name):
                attr = name
                break
        else:
            raise AppLoadError(
                f"{target!r} has neither an 'application' nor an 'app' attribute; "
                f"name one with {target}:NAME"
            )
    if "(" in attr:
        app = _call_factory(module, attr)
    elif attr.isidentifier():
        if not hasattr(module, attr):
            raise AppLoadError(f"{target!r} has no attribute {attr!r}")
        app = getattr(module, attr)
    else:
        raise AppLoadError(f"{attr!r} is not an attribute name or a factory call")
    if not callable(app):
        raise AppLoadError(f"{spec!r} is {type(app).__name__}, not a WSGI callable")
    return app
