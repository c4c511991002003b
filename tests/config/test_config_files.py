# ruff: noqa: E501 - tables of expected messages read best one case a line
"""Config files and precedence: ferrogate.toml, [tool.ferrogate] in pyproject.toml, -c FILE
(TOML or a gunicorn-style Python file), FERROGATE_* variables, the command line; what
--check-config prints, and every mistake refused before anything is bound, naming the
setting, the file and line, and the closest known name."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving import APPS_DIR, can_connect, free_port, server_env, start, wait_until_ready

EXIT_USAGE = 2


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the test apps importable from it."""
    for name in ("hello.py", "environ_dump.py"):
        shutil.copy(APPS_DIR / name, tmp_path / name)
    return tmp_path


def ferrogate(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30):
    return subprocess.run(
        [sys.executable, "-m", "ferrogate", *args],
        cwd=cwd,
        env=server_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def effective(output: str) -> dict[str, tuple[str, str]]:
    """--check-config's lines as name -> (value, source)."""
    out = {}
    for line in output.splitlines():
        if line.startswith("#") or " = " not in line:
            continue
        setting, _, rest = line.partition(" = ")
        value, _, source = rest.rpartition(" # ")
        out[setting] = (value.strip(), source.strip())
    return out


def test_ferrogate_toml_in_the_working_directory_is_read(project):
    (project / "ferrogate.toml").write_text(
        '# the demo\napp = "hello:app"\nworkers = 3\nbind = ["127.0.0.1:9001", "unix:/tmp/x.sock"]\n'
        "keep-alive = 2.5\ndebug = false\n"
    )
    result = ferrogate("--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    settings = effective(result.stdout)
    toml = str(project / "ferrogate.toml")
    assert settings["app"] == ('"hello:app"', f"{toml} line 2")
    assert settings["workers"] == ("3", f"{toml} line 3")
    assert settings["bind"] == ('["127.0.0.1:9001", "unix:/tmp/x.sock"]', f"{toml} line 4")
    assert settings["keep_alive"] == ("2.5", f"{toml} line 5")
    assert settings["debug"] == ("false", f"{toml} line 6")
    assert settings["threads"] == ("64", "default")
    assert result.stdout.startswith(f"# config file: {toml}")


def test_check_config_prints_every_setting(project):
    from ferrogate import _ferrogate

    result = ferrogate("--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    rows = _ferrogate.settings_table()
    names = {row["name"] for row in rows if not row["hidden"]} - {"check_config"}
    assert set(effective(result.stdout)) == names
    assert result.stdout.startswith("# no config file")


def test_pyproject_tool_table_is_read_and_ferrogate_toml_wins(project):
    (project / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n\n[tool.ferrogate]\nthreads = 7\n'
    )
    settings = effective(ferrogate("--check-config", cwd=project).stdout)
    assert settings["threads"] == ("7", f"{project / 'pyproject.toml'} line 5")
    (project / "ferrogate.toml").write_text("workers = 2\n")
    settings = effective(ferrogate("--check-config", cwd=project).stdout)
    assert settings["threads"] == ("64", "default")
    assert settings["workers"][0] == "2"


def test_precedence_is_command_line_then_env_then_file(project):
    (project / "ferrogate.toml").write_text('workers = 2\nthreads = 3\nroot_path = "/file"\n')
    env = {"FERROGATE_THREADS": "5", "FERROGATE_ROOT_PATH": "/env"}
    result = ferrogate("--check-config", "--root-path", "/cli", cwd=project, env=env)
    settings = effective(result.stdout)
    assert settings["workers"] == ("2", f"{project / 'ferrogate.toml'} line 1")
    assert settings["threads"] == ("5", "env FERROGATE_THREADS")
    assert settings["root_path"] == ('"/cli"', "command line")


def test_explicit_config_file_and_a_missing_one(project):
    (project / "prod.toml").write_text("workers = 4\n")
    (project / "ferrogate.toml").write_text("workers = 9\n")
    settings = effective(ferrogate("-c", "prod.toml", "--check-config", cwd=project).stdout)
    assert settings["workers"] == ("4", "prod.toml line 1")
    result = ferrogate("--config", "nope.toml", "hello:app", cwd=project)
    assert result.returncode == EXIT_USAGE
    assert "config file nope.toml does not exist" in result.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("workers = 2\n\nworker = 3\n", "unknown setting `worker` in {f} line 3; did you mean `workers`?"),
        ("workers = 0\n", "bad value \"0\" for `workers` in {f} line 1"),
        ('workers = "four"\n', "bad value \"four\" for `workers` in {f} line 1"),
        ('debug = "yes"\n', "`debug` in {f} line 1 must be true or false, not a string"),
        ("threads = [1, 2]\n", "`threads` in {f} line 1 must be"),
        ('keep_alive = -1\n', "bad value \"-1\" for `keep_alive` in {f} line 1"),
        ('log_level = "chatty"\n', "bad value \"chatty\" for `log_level` in {f} line 1"),
        ("workers = 2\nkeepalive = 3\nkeep_alive = 4\n", "`keepalive` (line 2) and `keep_alive` (line 3)"),
        ("workers = = 2\n", "{f} line 1"),
        ('worker_class = "gevent"\n', "bad value \"gevent\" for `worker_class` in {f} line 1"),
        ('daemon = true\n', "--daemon is not offered"),
        ('config = "other.toml"\n', "`config` in {f} line 1 has no effect inside a config file"),
        ('statsd_host = "localhost:8125"\n', "`statsd_host` in {f} line 1 is a gunicorn setting ferrogate does not take"),
    ],
    ids=["unknown-key", "zero-workers", "string-workers", "switch-not-bool", "list-for-scalar",
         "negative-duration", "bad-level", "same-setting-twice", "syntax", "gevent", "daemon",
         "config-in-config", "gunicorn-unsupported"],
)  # fmt: skip
def test_a_bad_config_file_is_refused_before_binding(project, text, message):
    port = free_port()
    (project / "ferrogate.toml").write_text(text)
    result = ferrogate("hello:app", "--bind", f"127.0.0.1:{port}", cwd=project, timeout=20)
    assert result.returncode == EXIT_USAGE, result.stderr
    expected = message.format(f=project / "ferrogate.toml")
    assert expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, "one readable error, not a dump"
    assert not can_connect(f"127.0.0.1:{port}")


def test_bad_environment_value_names_the_variable(project):
    result = ferrogate("hello:app", cwd=project, env={"FERROGATE_WORKERS": "lots"})
    assert result.returncode == EXIT_USAGE
    assert "lots" in result.stderr and "--workers" in result.stderr


def test_a_served_toml_config_names_the_app_and_its_environment(project):
    shutil.copy(APPS_DIR / "process_facts.py", project / "process_facts.py")
    port = free_port()
    (project / "ferrogate.toml").write_text(
        f'app = "process_facts:app"\nbind = "127.0.0.1:{port}"\nroot_path = "/mounted"\n'
        'env = ["GREETING=from the config file", "EMPTY="]\n'
    )
    server = start([], cwd=project, wait_ready=False)
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    try:
        wait_until_ready(server)
        facts = json.loads(server.get("/mounted/x").body)
    finally:
        assert server.stop() == 0, server.log()
    assert facts["script_name"] == "/mounted"
    assert facts["env"]["GREETING"] == "from the config file"
    assert facts["env"]["EMPTY"] == ""
