"""--reload (development): saving an imported module, a --reload-extra-file or a file matching
--reload-include makes the master reload the workers (new code served, new worker pids);
files that are not watched change nothing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.serving import serve

pytestmark = pytest.mark.timeout(60)

APP = """
import helper


def app(environ, start_response):
    body = (helper.VERSION + " " + str(__import__("os").getpid())).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"""


def save(path: Path, text: str) -> None:
    """Save as editors do: write a new file, rename it over the old one."""
    tmp = path.with_suffix(".swp")
    tmp.write_text(text)
    os.replace(tmp, path)


def answer(server) -> tuple[str, int]:
    version, pid = server.get("/").body.decode().split()
    return version, int(pid)


def wait_for_version(server, version: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = answer(server)
        if seen[0] == version:
            return seen[1]
        time.sleep(0.1)
    raise AssertionError(f"still serving {seen} after {timeout}s\n{server.log()}")


@pytest.fixture
def project(tmp_path):
    (tmp_path / "reloadable.py").write_text(APP)
    (tmp_path / "helper.py").write_text('VERSION = "v1"\n')
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "page.html").write_text("<p>1</p>")
    (tmp_path / "data.txt").write_text("1")
    (tmp_path / "unwatched.txt").write_text("1")
    return tmp_path


def test_saving_a_module_reloads_the_new_code(project):
    flags = ["--reload", "--reload-extra-file", "data.txt", "--reload-include", "templates/*.html"]
    with serve("reloadable:app", *flags, cwd=project) as server:
        version, first = answer(server)
        assert version == "v1"
        server.wait_for_log(r"--reload: watching \d+ files")
        save(project / "helper.py", 'VERSION = "v2"\n')
        second = wait_for_version(server, "v2")
        assert second != first
        assert "helper.py changed; asking the master to reload" in server.log()

        # An extra file and an included glob reload too (the pid changes, the code is the same).
        # Each save waits until the last hand-over is over (the old worker retired).
        server.wait_for_log(r"Worker \d+ retired", count=1)
        save(project / "data.txt", "2")
        third = wait_for_new_pid(server, second)
        server.wait_for_log(r"Worker \d+ retired", count=2)
        save(project / "templates" / "page.html", "<p>2</p>")
        fourth = wait_for_new_pid(server, third)

        # A file that is not watched changes nothing.
        server.wait_for_log(r"Worker \d+ retired", count=3)
        save(project / "unwatched.txt", "2")
        time.sleep(1.5)
        assert answer(server)[1] == fourth


def wait_for_new_pid(server, old: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = answer(server)[1]
        if pid != old:
            return pid
        time.sleep(0.1)
    raise AssertionError(f"worker {old} was not replaced within {timeout}s\n{server.log()}")


def test_reload_with_preload_is_refused(project):
    import subprocess
    import sys

    from tests.serving import server_env

    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "reloadable:app", "--reload", "--preload"],
        cwd=project, env=server_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--reload and --preload do not go together" in result.stderr


def test_a_syntax_error_keeps_the_old_workers_serving_until_the_next_good_save(project):
    with serve("reloadable:app", "--reload", cwd=project) as server:
        version, first = answer(server)
        server.wait_for_log(r"--reload: watching \d+ files")
        mark = server.log_mark()
        save(project / "helper.py", 'VERSION = "v2\n')  # unterminated string
        server.wait_for_log(r"SyntaxError", since=mark, timeout=15)
        # The old worker goes on serving the old code, and goes on watching.
        for _ in range(10):
            assert answer(server) == ("v1", first)
            time.sleep(0.1)
        save(project / "helper.py", 'VERSION = "v3"\n')
        assert wait_for_version(server, "v3", timeout=15) != first
