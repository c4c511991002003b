"""``--log-config FILE``: Python's logging configured from a file, as gunicorn's
``--log-config`` (an ini for ``logging.config.fileConfig``) and ``--log-config-json`` (a
``logging.config.dictConfig`` dictionary), plus the same dictionary in TOML.

Called once by the master before the app is imported anywhere (``--preload`` or not): the
workers are forked from it and inherit the configured loggers and handlers. ferrogate's own
error-log lines do not pass through here; they are written by the server without Python.
"""

from __future__ import annotations

import json
import logging.config
import os
import sys
from typing import Any

__all__ = ["LogConfigError", "configure"]


class LogConfigError(Exception):
    """The file is missing, unreadable, or not a logging configuration; the message names it."""


def configure(file: str | os.PathLike[str]) -> None:
    """Apply the logging configuration in ``file``: a dictConfig dictionary in a ``.json`` or
    ``.toml`` file, otherwise an ini file for fileConfig (``%(here)s`` is its folder)."""
    path = os.fspath(file)
    if not os.path.isfile(path):
        raise LogConfigError(f"the logging configuration {path!r} (--log-config) does not exist")
    kind = os.path.splitext(path)[1].lower()
    try:
        if kind in (".json", ".toml"):
            logging.config.dictConfig(_read_dict(path, kind))
        else:
            defaults = {"here": os.path.dirname(path), "__file__": path}
            logging.config.fileConfig(path, defaults, disable_existing_loggers=False)
    except Exception as exc:  # fileConfig and dictConfig raise KeyError, ValueError, ...
        what = "dictConfig" if kind in (".json", ".toml") else "fileConfig"
        raise LogConfigError(
            f"the logging configuration {path!r} (--log-config) is not valid for "
            f"logging.config.{what}: {type(exc).__name__}: {exc}"
        ) from None


def _read_dict(path: str, kind: str) -> dict[str, Any]:
    with open(path, "rb") as file:
        if kind == ".json":
            config = json.load(file)
        elif sys.version_info >= (3, 11):
            import tomllib

            config = tomllib.load(file)
        else:  # pragma: no cover - Python 3.9 and 3.10 have no tomllib
            raise ValueError("a TOML logging configuration needs Python 3.11 or later")
    if not isinstance(config, dict):
        raise ValueError(f"the file holds a {type(config).__name__}, not a dictionary")
    config.setdefault("version", 1)
    return config
