"""--log-config: Python's logging configured from a file (an ini for fileConfig, or a
dictConfig dictionary in JSON or TOML) before the app is imported, in every worker; a file
that is missing or not a logging configuration stops the start with exit code 2, naming it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests import serving

INI = """\
[loggers]
keys = root, app_logger

[handlers]
keys = to_file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers =

[logger_app_logger]
level = INFO
handlers = to_file
qualname = app_logger
propagate = 0

[handler_to_file]
class = FileHandler
args = ('%(here)s/app.log', 'a')
formatter = plain

[formatter_plain]
format = %(levelname)s %(name)s %(message)s
"""

DICT = {
    "version": 1,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {"to_file": {"class": "logging.FileHandler", "filename": "", "formatter": "plain"}},
    "loggers": {"app_logger": {"level": "INFO", "handlers": ["to_file"], "propagate": False}},
}

TOML = """\
version = 1
[formatters.plain]
format = "%(levelname)s %(name)s %(message)s"
[handlers.to_file]
class = "logging.FileHandler"
filename = "{log}"
formatter = "plain"
[loggers.app_logger]
level = "INFO"
handlers = ["to_file"]
propagate = false
"""


def write_config(kind: str, directory: Path) -> Path:
    log = directory / "app.log"
    if kind == "ini":
        path = directory / "logging.ini"
        path.write_text(INI)
    elif kind == "json":
        path = directory / "logging.json"
        config = json.loads(json.dumps(DICT))
        config["handlers"]["to_file"]["filename"] = str(log)
        path.write_text(json.dumps(config))
    else:
        path = directory / "logging.toml"
        path.write_text(TOML.format(log=log))
    return path


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["ini", "json", "toml"])
def test_the_apps_logger_goes_to_the_configured_file_in_every_worker(serve, tmp_path, kind):
    config = write_config(kind, tmp_path)
    with serve("app_logger:app", "--workers", "2", "--log-config", str(config)) as server:
        workers = server.wait_for_workers(2)
        for path in ("/one", "/two", "/three"):
            assert server.get(path).status == 200
        # A worker counts as live from its fork; under load one may still be importing the
        # app after the other has answered all three requests, so each import line is waited
        # for rather than expected at once.
        for pattern in [
            r"request for /three",
            *(rf"INFO app_logger imported in {pid}\n" for pid in workers),
        ]:
            serving.wait_for_text(lambda: (tmp_path / "app.log").read_text(), pattern, timeout=15)
        text = (tmp_path / "app.log").read_text()
        for path in ("/one", "/two", "/three"):
            assert f"WARNING app_logger request for {path}\n" in text
        # Not on stderr, where Python's last-resort handler would have put the warnings.
        assert "request for" not in server.log()


def test_a_relative_path_is_read_from_where_ferrogate_started(tmp_path):
    config = write_config("ini", tmp_path)
    server = serving.start(
        ["app_logger:app", "--chdir", str(serving.APPS_DIR), "--log-config", config.name],
        binds=[f"127.0.0.1:{serving.free_port()}"],
        cwd=tmp_path,
    )
    try:
        assert server.get("/rel").status == 200
        serving.wait_for_text(lambda: (tmp_path / "app.log").read_text(), r"request for /rel")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("missing.ini", None, r"does not exist"),
        ("broken.ini", "[loggers]\nkeys = root\n", r"not valid for logging\.config\.fileConfig"),
        (
            "bad_class.json",
            json.dumps({"version": 1, "handlers": {"h": {"class": "no.such.Handler"}}}),
            r"not valid for logging\.config\.dictConfig",
        ),
        ("list.json", "[1, 2]", r"not a dictionary"),
        ("bad.toml", "version = ", r"not valid for logging\.config\.dictConfig"),
    ],
)
def test_a_bad_file_is_a_config_error_naming_it(tmp_path, name, text, says):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    server = serving.start(
        ["app_logger:app", "--log-config", str(path)],
        binds=[f"127.0.0.1:{serving.free_port()}"],
        wait_ready=False,
    )
    assert server.wait(15) == 2
    log = server.log()
    assert re.search(re.escape(repr(str(path))) + r" \(--log-config\).*" + says, log), log
    assert "Traceback" not in log


@pytest.mark.timeout(60)
def test_sighup_applies_the_log_config_again_for_the_new_workers(tmp_path):
    import signal

    config = write_config("ini", tmp_path)
    with serving.serve("app_logger:app", "--log-config", str(config)) as server:
        assert server.get("/before").status == 200
        serving.wait_for_text(lambda: (tmp_path / "app.log").read_text(), r"request for /before")
        old = server.wait_for_workers(1)
        config.write_text(INI.replace("/app.log", "/after.log"))
        server.send_signal(signal.SIGHUP)
        server.wait_for_workers(1, exclude=old, timeout=20)
        assert server.get("/after").status == 200
        serving.wait_for_text(
            lambda: (
                (tmp_path / "after.log").read_text() if (tmp_path / "after.log").exists() else ""
            ),
            r"request for /after",
            timeout=10,
        )
        assert "request for /after" not in (tmp_path / "app.log").read_text()
        server.wait_for_log(r"SIGHUP: applied .*logging\.ini \(--log-config\) again")
