# ruff: noqa: E501 - tables of expected messages read best one case a line
"""A gunicorn deployment carries over: gunicorn.conf.py read with gunicorn's names, gunicorn's
command-line spellings accepted, and what has no meaning here refused by name."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.config.test_config_files import EXIT_USAGE, effective, ferrogate
from tests.serving import APPS_DIR, can_connect, free_port, start, wait_until_ready


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("hello.py", "process_facts.py"):
        shutil.copy(APPS_DIR / name, tmp_path / name)
    return tmp_path


def write_conf(project: Path, text: str, name: str = "gunicorn.conf.py") -> Path:
    path = project / name
    path.write_text(textwrap.dedent(text))
    return path


def test_gunicorn_conf_py_names_are_mapped_and_served(project):
    port = free_port()
    access = project / "access.log"
    write_conf(
        project,
        f"""\
        import multiprocessing

        CORES = multiprocessing.cpu_count()

        def _helper():
            return 2

        wsgi_app = "process_facts:app"
        bind = "127.0.0.1:{port}"
        workers = _helper()
        threads = 4
        keepalive = 3
        accesslog = "{access}"
        errorlog = "-"
        loglevel = "warning"
        raw_env = ["FROM_GUNICORN=yes"]
        forwarded_allow_ips = "127.0.0.1"
        worker_class = "gthread"
        sendfile = True
        """,
    )
    result = ferrogate("-c", "gunicorn.conf.py", "--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    settings = effective(result.stdout)
    assert settings["workers"] == ("2", "gunicorn.conf.py line 10")
    assert settings["keep_alive"] == ("3", "gunicorn.conf.py line 12")
    assert settings["access_log"][0] == f'"{access}"'
    assert settings["log_level"] == ('"warning"', "gunicorn.conf.py line 15")
    assert settings["env"] == ('["FROM_GUNICORN=yes"]', "gunicorn.conf.py line 16")
    server = start(["-c", "gunicorn.conf.py"], cwd=project, wait_ready=False)
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    try:
        wait_until_ready(server)
        assert len(server.wait_for_workers(2)) == 2
        facts = json.loads(server.get("/").body)
    finally:
        assert server.stop() == 0, server.log()
    assert facts["env"]["FROM_GUNICORN"] == "yes"
    assert '"GET / HTTP/1.1" 200' in access.read_text()


@pytest.mark.parametrize(
    "text, message",
    [
        ("worker = 2\n", "unknown setting `worker` in gunicorn.conf.py line 1; did you mean `workers`?"),
        ('worker_class = "gevent"\n', 'bad value "gevent" for `worker_class` in gunicorn.conf.py line 1'),
        ("def worker_abort(worker):\n    pass\n", "`worker_abort` in gunicorn.conf.py line 1 is a gunicorn setting ferrogate does not take: a worker stopped by SIGINT or by --timeout runs no Python"),
        ("workers = object()\n", "`workers` in gunicorn.conf.py line 1 must be a whole number, not a Python object"),
        ("import nosuchmodule\n", "cannot run the config file gunicorn.conf.py"),
        ("daemon = True\n", "daemon"),
    ],
    ids=["typo", "gevent", "hook", "object", "import-error", "daemon"],
)  # fmt: skip
def test_gunicorn_conf_py_mistakes_are_refused(project, text, message):
    write_conf(project, text)
    result = ferrogate("-c", "gunicorn.conf.py", "hello:app", cwd=project)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert message in result.stderr, result.stderr


def test_a_gunicorn_command_line_works_with_the_name_changed(project):
    port = free_port()
    args = ["-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "-",
            "--error-logfile", "-", "-k", "gthread", "--worker-connections", "500",
            "--limit-request-field_size", "4096", "--keep-alive", "2", "hello:app"]  # fmt: skip
    server = start(args, cwd=project, wait_ready=False)
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    try:
        wait_until_ready(server)
        assert len(server.wait_for_workers(2)) == 2
        assert server.get("/").status == 200
    finally:
        assert server.stop() == 0, server.log()
    assert '"GET / HTTP/1.1" 200' in server.stdout()
    settings = effective(ferrogate(*args[:-1], "--check-config", cwd=project).stdout)
    assert settings["max_connections"] == ("500", "command line")
    assert settings["limit_request_field_size"] == ("4096", "command line")


def test_daemon_is_refused_with_the_reason(project):
    port = free_port()
    result = ferrogate("-D", "hello:app", "--bind", f"127.0.0.1:{port}", cwd=project)
    assert result.returncode == EXIT_USAGE
    assert "--daemon is not offered" in result.stderr and "systemd" in result.stderr
    assert not can_connect(f"127.0.0.1:{port}")
