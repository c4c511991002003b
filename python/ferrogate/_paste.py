"""Loading an app from a paste.deploy ini file (``--paste api-paste.ini#name``, ``config:``
app specs), as gunicorn's ``--paste`` does, through the real PasteDeploy.

The master calls :func:`configure` once: it checks that PasteDeploy is installed, applies the
ini's logging sections and keeps ``--paste-global`` for the workers, which inherit it by fork
and call :func:`load_app`. A loading error names the ini file, the section and the factory
(``[filter:authtoken] use = egg:keystonemiddleware#auth_token: no module named
'keystonemiddleware'``), so that a 40-section api-paste.ini points at its broken line.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import logging.config
import os
import traceback
from typing import Any, Optional, Sequence

from ._loader import AppLoadError

#: What the error says to install when PasteDeploy is missing.
EXTRA = "pip install 'ferrogate[paste]'"

#: ``--paste-global KEY=VALUE`` pairs, set by the master before the workers fork.
GLOBAL_CONF: dict[str, str] = {}


class PasteLoadError(AppLoadError):
    """A section of the ini could not be loaded; the message names the file, the section and
    its factory, then the cause."""

    def __init__(
        self, filename: str, section: Optional[str], factory: Optional[str], cause: BaseException
    ) -> None:
        where = f"[{section}] " if section else ""
        what = f"{factory}: " if factory else ""
        message = f"{filename}: {where}{what}{_describe(cause)}"
        if not isinstance(cause, _PLAIN_CAUSES):
            # The factory itself failed: its traceback is what the user needs next.
            detail = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
            message = f"{message}\n{detail.rstrip()}"
        super().__init__(message)


#: Causes that say all there is to say in one line (a missing module, section or option).
_PLAIN_CAUSES = (ImportError, LookupError, ValueError, configparser.Error)


def _describe(cause: BaseException) -> str:
    if isinstance(cause, importlib.metadata.PackageNotFoundError):
        return f"no installed distribution named {cause.name!r}"
    if isinstance(cause, ModuleNotFoundError) and cause.name:
        return f"no module named {cause.name!r}"
    text = str(cause.args[0]) if len(cause.args) == 1 else str(cause)
    # A LookupError or ValueError from PasteDeploy or a factory says what is wrong in words.
    plain = isinstance(cause, (LookupError, ValueError))
    return text if plain else f"{type(cause).__name__}: {text}"


def _require_pastedeploy() -> Any:
    try:
        from paste.deploy import loadwsgi
    except ImportError as exc:
        raise AppLoadError(
            f"loading a paste.deploy ini file needs PasteDeploy, which is not installed: {EXTRA}"
        ) from exc
    return loadwsgi


def split_spec(spec: str) -> tuple[str, str]:
    """``[config:]path[#name]`` as (absolute path, app name)."""
    if spec.startswith("config:"):
        spec = spec[len("config:") :]
    path, _, name = spec.partition("#")
    return os.path.abspath(path), name or "main"


def configure(spec: str, global_pairs: Sequence[str]) -> str:
    """In the master, before forking: check the ini and PasteDeploy, apply the ini's logging
    sections (``[loggers]``, ``[handlers]``, ``[formatters]``) like gunicorn's --paste, keep
    the globals, and return the app spec the workers load (``config:/abs/path.ini#name``)."""
    path, name = split_spec(spec)
    if not os.path.isfile(path):
        raise AppLoadError(f"the paste.deploy ini file {path!r} does not exist")
    _require_pastedeploy()
    GLOBAL_CONF.clear()
    GLOBAL_CONF.update(pair.split("=", 1) for pair in global_pairs)  # type: ignore[misc]
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise PasteLoadError(path, None, None, exc) from None
    if parser.has_section("loggers"):
        defaults = {"here": os.path.dirname(path), "__file__": path}
        try:
            logging.config.fileConfig(path, defaults, disable_existing_loggers=False)
        except Exception as exc:  # fileConfig raises KeyError, ValueError, ImportError ...
            raise PasteLoadError(path, "loggers", "logging.config.fileConfig", exc) from None
    return f"config:{path}#{name}"


def load_app(spec: str) -> Any:
    """The WSGI app a ``config:`` spec names, loaded through PasteDeploy with the globals."""
    loadwsgi = _require_pastedeploy()
    path, name = split_spec(spec)
    loader_class = _tracing_loader(loadwsgi)
    try:
        loader = loader_class(path)
    except (OSError, configparser.Error) as exc:
        raise PasteLoadError(path, None, None, exc) from None
    if GLOBAL_CONF:
        loader.update_defaults(dict(GLOBAL_CONF), overwrite=False)
    context = loader.get_context(loadwsgi.APP, name, dict(GLOBAL_CONF) or None)
    return context.create()


def _tracing_loader(loadwsgi: Any) -> Any:
    """PasteDeploy's ConfigLoader, recording which section each context comes from so that
    an error, when the context is found or when its factory runs, can name it."""

    class TracingLoader(loadwsgi.ConfigLoader):  # type: ignore[misc]
        def get_context(
            self, object_type: Any, name: Optional[str] = None, global_conf: Any = None
        ) -> Any:
            if self.absolute_name(name):
                # egg:/config:/call: names: the enclosing section reports their errors.
                return super().get_context(object_type, name, global_conf)
            try:
                section = self.find_config_section(object_type, name=name)
            except LookupError as exc:
                raise PasteLoadError(self.filename, None, None, exc) from None
            factory = _factory_of(self.parser, section)
            try:
                context = super().get_context(object_type, name, global_conf)
            except PasteLoadError:
                raise
            except Exception as exc:
                raise PasteLoadError(self.filename, section, factory, exc) from None
            _trace_create(context, self.filename, section, factory)
            return context

    return TracingLoader


def _factory_of(parser: Any, section: str) -> Optional[str]:
    """How the section names what builds it, as written (``use = egg:ferrogate#static``)."""
    raw = parser._sections.get(section, {})
    for key in ("use", "pipeline", "next"):
        if key in raw:
            return f"{key} = {' '.join(str(raw[key]).split())}"
    for key, value in raw.items():
        if key.startswith("paste.") and key.endswith("_factory"):
            return f"{key} = {value}"
    return None


def _trace_create(context: Any, filename: str, section: str, factory: Optional[str]) -> None:
    create = context.create

    def traced_create() -> Any:
        try:
            return create()
        except PasteLoadError:
            raise
        except Exception as exc:
            raise PasteLoadError(filename, section, factory, exc) from None

    context.create = traced_create
