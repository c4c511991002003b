"""``ferrogate.run(app, bind=..., workers=..., threads=..., **options)`` blocks and serves
like the command line (apps/api_run.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from tests.rawhttp import RawConnection
from tests.serving import APPS_DIR, free_port, server_env, start_script, wait_for_text


def test_run_serves_with_workers_threads_binds_and_options(tmp_path):
    port, unix_path = free_port(), tmp_path / "run.sock"
    server = start_script(["api_run.py", str(port), str(unix_path)], bind=f"127.0.0.1:{port}")
    try:
        workers = server.wait_for_workers(2)
        env = json.loads(server.get("/via-tcp").body)
        assert env["pid"] in workers
        assert env["multiprocess"] is True and env["multithread"] is True
        with RawConnection(str(unix_path), family=socket.AF_UNIX) as conn:
            conn.send(b"GET /via-unix HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert conn.read_response().status == 200
        # access_log="-" became --access-log -: one combined line per request on stdout.
        wait_for_text(server.stdout, r'"GET /via-tcp HTTP/1\.1" 200 ')
        assert server.stop() == 0
    finally:
        server.kill()


def test_run_with_unknown_option_is_a_type_error_naming_it(tmp_path):
    argv = [sys.executable, "api_run.py", str(free_port()), str(tmp_path / "x.sock"), "bad-option"]
    proc = subprocess.run(
        argv,
        cwd=APPS_DIR,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "TypeError: ferrogate.run() got an unknown setting 'no_such_option'" in proc.stderr


def test_run_keywords_are_checked_against_the_settings():
    import ferrogate

    assert ferrogate._settings_argv({"keep_alive": 0, "debug": False, "threads": None}) == [
        "--keep-alive",
        "0",
    ]
    assert ferrogate._settings_argv({"debug": True, "bind": ["a:1", "b:2"]}) == [
        "--debug",
        "--bind",
        "a:1",
        "--bind",
        "b:2",
    ]
    for bad, words in [({"worker": 2}, "did you mean 'workers'"), ({"debug": "yes"}, "switch")]:
        try:
            ferrogate._settings_argv(bad)
        except TypeError as error:
            assert words in str(error), error
        else:
            raise AssertionError(f"{bad} was accepted")


def test_run_without_keywords_takes_the_config_file_and_environment(tmp_path):
    """run()'s keywords default to "not given", so a config file and FERROGATE_* apply, as
    for the command (a keyword would override them both)."""
    import shutil

    port = free_port()
    shutil.copy(APPS_DIR / "api_run_bare.py", tmp_path / "api_run_bare.py")
    (tmp_path / "ferrogate.toml").write_text(f'bind = "127.0.0.1:{port}"\nworkers = 3\n')
    server = start_script(
        [str(tmp_path / "api_run_bare.py")],
        bind=f"127.0.0.1:{port}",
        cwd=tmp_path,
        env={"FERROGATE_WORKERS": "2"},
    )
    try:
        workers = server.wait_for_workers(2)
        assert int(server.get("/").body) in workers
        assert server.stop() == 0
    finally:
        server.kill()
