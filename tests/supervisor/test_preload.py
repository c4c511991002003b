"""--preload imports the app once, in the master, before binding and forking; without it each
worker imports it. A broken app with --preload stops the start before any socket or worker."""

from __future__ import annotations

import subprocess
import sys

from tests.serving import APPS_DIR, can_connect, free_port, serve, server_env

EXIT_APP_LOAD = 3


def imports(log) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_preload_imports_once_in_the_master(tmp_path):
    log = tmp_path / "imports"
    with serve("import_pid:app", "--preload", "--workers", "2", env={"IMPORT_LOG": str(log)}) as s:
        workers = s.wait_for_workers(2)
        served = {int(s.get("/").body) for _ in range(20)}
        assert imports(log) == [s.pid]
        assert served <= set(workers) and served
        assert "Preloaded the app in the master" in s.log()


def test_without_preload_each_worker_imports(tmp_path):
    log = tmp_path / "imports"
    with serve("import_pid:app", "--workers", "2", env={"IMPORT_LOG": str(log)}) as s:
        workers = s.wait_for_workers(2)
        s.get("/")
        assert sorted(imports(log)) == sorted(workers)


def test_a_broken_app_with_preload_fails_before_binding(tmp_path):
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "broken_import:app", "--preload",
         "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=APPS_DIR, env=server_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "Failed to load the app" in result.stderr
    assert "Booting worker" not in result.stderr and "Listening at" not in result.stderr
    assert not can_connect(f"127.0.0.1:{port}")
