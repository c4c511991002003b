"""Process settings: --pid (written once bound, removed on exit), --user/--group (workers run
as them, before the app is imported; the master keeps root), --umask (Unix sockets included),
--env; each seen from outside: files, /proc and what the app reports."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serving import APPS_DIR, free_port, serve, server_env

EXIT_USAGE = 2
NOBODY, NOGROUP = 65534, 65534


def run_ferrogate(*args: str) -> subprocess.CompletedProcess:
    """The command run to its end (for settings refused at start)."""
    return subprocess.run(
        [sys.executable, "-m", "ferrogate", *args],
        cwd=APPS_DIR, env=server_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def proc_ids(pid: int) -> tuple[int, int]:
    """(real uid, real gid) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    uid = next(int(line.split()[1]) for line in status if line.startswith("Uid:"))
    gid = next(int(line.split()[1]) for line in status if line.startswith("Gid:"))
    return uid, gid


def test_pid_file_holds_the_master_pid_and_is_removed_on_exit(tmp_path):
    pid_file = tmp_path / "ferrogate.pid"
    with serve("hello:app", "--pid", str(pid_file), "--workers", "2") as server:
        server.wait_for_workers(2)
        assert pid_file.read_text() == f"{server.pid}\n"
        assert server.stop() == 0, server.log()
    assert not pid_file.exists()


def test_an_unwritable_pid_file_stops_the_start(tmp_path):
    port = free_port()
    result = run_ferrogate(
        "hello:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--pid",
        str(tmp_path / "no" / "such" / "dir.pid"),
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "Cannot write the pid file" in result.stderr


def require_root() -> None:
    assert os.geteuid() == 0, "dropping privileges is tested as root: run the suite as CI does"


def test_workers_run_as_the_user_and_group_the_master_keeps_root():
    require_root()
    with serve("whoami:app", "--user", "nobody", "--group", "nogroup") as server:
        (worker,) = server.wait_for_workers(1)
        facts = json.loads(server.get("/").body)
        assert (facts["uid"], facts["gid"]) == (NOBODY, NOGROUP)
        assert facts["groups"] == [NOGROUP]
        assert proc_ids(worker) == (NOBODY, NOGROUP)
        assert proc_ids(server.pid) == (0, 0)
        assert "Workers run as user nobody (65534), group nogroup (65534)" in server.log()


def test_a_numeric_user_takes_its_own_group():
    require_root()
    with serve("whoami:app", "--user", str(NOBODY)) as server:
        facts = json.loads(server.get("/").body)
        assert (facts["uid"], facts["gid"]) == (NOBODY, NOGROUP)


@pytest.mark.parametrize(
    "flag, name", [("--user", "no-such-user-x"), ("--group", "no-such-group-x")]
)
def test_an_unknown_user_or_group_stops_the_start(flag, name):
    result = run_ferrogate("hello:app", "--bind", f"127.0.0.1:{free_port()}", flag, name)
    assert result.returncode == EXIT_USAGE, result.stderr
    assert f"{flag} {name}: no such" in result.stderr


def test_umask_applies_to_unix_sockets_and_the_app(tmp_path):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "app.sock"
    with serve("process_facts:app", "--umask", "0o077", binds=[f"unix:{path}"]) as server:
        mode = stat.S_IMODE(path.stat().st_mode)
        with server.connect() as conn:
            conn.send_request("GET", "/", close=True)
            facts = json.loads(conn.read_response().body)
    assert mode == 0o700
    assert facts["umask"] == 0o077


@pytest.mark.parametrize("bad", ["999", "0o1000", "rwx"])
def test_a_bad_umask_is_refused(bad):
    result = run_ferrogate("hello:app", "--umask", bad)
    assert result.returncode == EXIT_USAGE
    assert "--umask" in result.stderr and "octal" in result.stderr


def test_env_sets_variables_for_the_app():
    with serve("process_facts:app", "-e", "GREETING=hi there", "--env", "EMPTY=") as server:
        facts = json.loads(server.get("/").body)
    assert facts["env"]["GREETING"] == "hi there" and facts["env"]["EMPTY"] == ""


def test_env_without_an_equals_sign_is_refused():
    result = run_ferrogate("hello:app", "--env", "JUSTANAME")
    assert result.returncode == EXIT_USAGE
    assert "is not KEY=VALUE" in result.stderr


@pytest.mark.parametrize("mode", ["0o660", "0600", "777"])
def test_unix_socket_perms_sets_the_socket_mode(tmp_path, mode):
    path = tmp_path / "perms.sock"
    with serve("hello:app", "--unix-socket-perms", mode, binds=[f"unix:{path}"]) as server:
        assert stat.S_IMODE(path.stat().st_mode) == int(mode.removeprefix("0o"), 8)
        with server.connect() as conn:
            conn.send_request("GET", "/", close=True)
            assert conn.read_response().status == 200


def test_a_bad_unix_socket_mode_is_refused():
    result = run_ferrogate("hello:app", "--unix-socket-perms", "0o1777")
    assert result.returncode == EXIT_USAGE
    assert "not an octal file mode" in result.stderr
