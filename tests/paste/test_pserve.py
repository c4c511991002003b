"""``[server:main] use = egg:ferrogate`` under ``pserve`` (pyramid's; PasteDeploy ships none):
every setting by its name, string values converted by the settings table, ``host``/``port``
and waitress's ``listen`` as binds, a wrong setting named."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.paste.test_paste_loading import PASTE_DIR
from tests.serving import free_port, server_env, start, wait_until_ready

PSERVE = str(Path(sys.executable).parent / "pserve")

APP = "[app:main]\npaste.app_factory = pasteapp:app_factory\ntext = pserved\n\n"


def pserve(tmp_path: Path, server_section: str, port: int, *args: str):
    ini = tmp_path / "development.ini"
    ini.write_text(APP + "[server:main]\nuse = egg:ferrogate\n" + server_section)
    server = start([str(ini), *args], cwd=tmp_path, env={"PYTHONPATH": str(PASTE_DIR)},
                   wait_ready=False, argv_prefix=[PSERVE])
    server.binds = [f"127.0.0.1:{port}"]
    server.host, server.port = "127.0.0.1", port
    return server, ini


def test_settings_by_name_with_string_values(tmp_path):
    port = free_port()
    section = (
        f"host = 127.0.0.1\nport = {port}\nworkers = 2\nthreads = 4\naccess-log = -\n"
        "preload = true\nno_native_middleware = off\nmax_requests = 500\n"
    )
    server, _ = pserve(tmp_path, section, port)
    try:
        wait_until_ready(server)
        assert server.get("/a").body == b"pserved |/a"
        assert len(server.wait_for_workers(2)) == 2
        deadline = time.monotonic() + 5
        while '"GET /a HTTP/1.1" 200' not in server.stdout():
            assert time.monotonic() < deadline, server.stdout()
            time.sleep(0.05)
    finally:
        code = server.stop()
        server.kill()
    assert code == 0, server.log()


def test_waitress_listen_option_binds(tmp_path):
    port = free_port()
    server, _ = pserve(tmp_path, f"listen = 127.0.0.1:{port}\n", port)
    try:
        wait_until_ready(server)
        assert server.get("/").status == 200
    finally:
        server.stop()
        server.kill()


def _pserve_fails(tmp_path: Path, section: str) -> subprocess.CompletedProcess:
    ini = tmp_path / "bad.ini"
    ini.write_text(APP + "[server:main]\nuse = egg:ferrogate\n" + section)
    return subprocess.run([PSERVE, str(ini)], cwd=tmp_path, capture_output=True, text=True,
                          env=server_env({"PYTHONPATH": str(PASTE_DIR)}), timeout=30)


def test_unknown_setting_is_named(tmp_path):
    result = _pserve_fails(tmp_path, "bind = 127.0.0.1:0\nwokers = 2\n")
    assert result.returncode != 0
    assert "egg:ferrogate has no setting 'wokers'; did you mean 'workers'?" in result.stderr


def test_bad_switch_value_is_named(tmp_path):
    result = _pserve_fails(tmp_path, "bind = 127.0.0.1:0\npreload = maybe\n")
    assert result.returncode != 0
    assert "preload = 'maybe' is not a boolean" in result.stderr


def test_bad_value_is_refused_by_the_settings_table(tmp_path):
    result = _pserve_fails(tmp_path, f"bind = 127.0.0.1:{free_port()}\nworkers = many\n")
    # pserve exits 0 after a SystemExit: the runner raises instead, so the exit code says so.
    assert result.returncode != 0, result.stderr
    assert "invalid value 'many' for '--workers <N>'" in result.stderr
    assert "ferrogate exited with code 2; the reason is above" in result.stderr


def test_pserve_reload_restarts_ferrogate_on_an_ini_change(tmp_path):
    port = free_port()
    server, ini = pserve(tmp_path, f"bind = 127.0.0.1:{port}\n", port, "--reload")
    try:
        wait_until_ready(server)
        assert server.get("/").body == b"pserved |/"
        time.sleep(1)  # hupper's first scan of the watched files
        ini.write_text(ini.read_text().replace("text = pserved", "text = reloaded"))
        deadline = time.monotonic() + 20
        while True:
            try:
                if server.get("/").body == b"reloaded |/":
                    break
            except OSError:
                pass  # between the old server's exit and the new one's bind
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
    finally:
        server.stop()
        server.kill()
