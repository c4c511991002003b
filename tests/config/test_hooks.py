"""Server hooks from a gunicorn-style config file: each supported hook is called at its moment,
in the right process, with gunicorn's arguments; one that raises is logged (and for
on_starting / when_ready stops the start); hooks ferrogate does not call are refused by name."""

from __future__ import annotations

import os
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.config.test_config_files import EXIT_USAGE, ferrogate
from tests.serving import APPS_DIR, can_connect, free_port, start, wait_until_ready

HOOKS = """
import os

LOG = os.environ["HOOK_LOG"]


def _note(*words):
    with open(LOG, "a") as f:
        f.write(" ".join(str(w) for w in words) + "\\n")


def on_starting(server):
    _note("on_starting", os.getpid(), server.pid, server.settings["workers"])


def when_ready(server):
    _note("when_ready", os.getpid())
    server.log.info("hooks say hello")


def pre_fork(server, worker):
    _note("pre_fork", os.getpid(), worker.pid)


def post_fork(server, worker):
    _note("post_fork", os.getpid(), worker.pid)


def post_worker_init(worker):
    _note("post_worker_init", os.getpid(), worker.pid)


def worker_exit(server, worker):
    _note("worker_exit", os.getpid(), worker.pid)


def on_exit(server):
    _note("on_exit", os.getpid())


def on_reload(server):
    _note("on_reload", os.getpid())


def child_exit(server, worker):
    _note("child_exit", os.getpid(), worker.pid)


def nworkers_changed(server, new_value, old_value):
    _note("nworkers_changed", os.getpid(), new_value, old_value)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(APPS_DIR / "hello.py", tmp_path / "hello.py")
    return tmp_path


def served(project: Path, conf: str, env: dict[str, str]):
    port = free_port()
    (project / "gunicorn.conf.py").write_text(textwrap.dedent(conf))
    server = start(["-c", "gunicorn.conf.py", "hello:app", "-w", "2", "-b", f"127.0.0.1:{port}"],
                   cwd=project, env=env, wait_ready=False)  # fmt: skip
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    return server


def test_each_hook_runs_at_its_moment_in_its_process(project):
    log = project / "hooks.log"
    server = served(project, HOOKS, {"HOOK_LOG": str(log)})
    try:
        wait_until_ready(server)
        workers = server.wait_for_workers(2)
        server.wait_for_log(r"Booting worker", count=2)
        assert server.get("/").status == 200
        assert "hooks say hello" in server.log()
    finally:
        assert server.stop() == 0, server.log()
    lines = [line.split() for line in log.read_text().splitlines()]
    master = str(server.pid)
    by_hook: dict[str, list[list[str]]] = {}
    for name, *rest in lines:
        by_hook.setdefault(name, []).append(rest)
    assert by_hook["on_starting"] == [[master, master, "2"]]
    assert by_hook["when_ready"] == [[master]]
    assert by_hook["pre_fork"] == [[master, "0"], [master, "0"]]
    worker_pids = sorted(str(pid) for pid in workers)
    for hook in ("post_fork", "post_worker_init", "worker_exit"):
        assert sorted(pid for pid, _ in by_hook[hook]) == worker_pids, hook
        assert all(pid == worker for pid, worker in by_hook[hook]), hook
    assert by_hook["on_exit"] == [[master]]
    order = [name for name, *_ in lines]
    assert order[:3] == ["on_starting", "when_ready", "pre_fork"] and order[-1] == "on_exit"


def test_a_raising_on_starting_stops_the_start(project):
    port = free_port()
    (project / "gunicorn.conf.py").write_text(
        "def on_starting(server):\n    raise RuntimeError('no db')\n"
    )
    result = ferrogate(
        "-c", "gunicorn.conf.py", "hello:app", "-b", f"127.0.0.1:{port}", cwd=project
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "The on_starting hook raised" in result.stderr and "RuntimeError: no db" in result.stderr
    assert not can_connect(f"127.0.0.1:{port}")


def test_a_raising_post_fork_is_logged_and_the_worker_serves(project):
    conf = "def post_fork(server, worker):\n    raise ValueError('oops')\n"
    server = served(project, conf, {})
    try:
        wait_until_ready(server)
        assert server.get("/").status == 200
        server.wait_for_log(r"The post_fork hook raised")
        assert "ValueError: oops" in server.log()
    finally:
        assert server.stop() == 0, server.log()


@pytest.mark.parametrize(
    "conf, message",
    [
        ("def pre_request(worker, req):\n    pass\n", "would take the GIL for every request"),
        ("def worker_int(worker):\n    pass\n", "stopped by SIGINT or by --timeout runs no Python"),
        ("def worker_abort(worker):\n    pass\n", "runs no Python"),
    ],
)
def test_hooks_that_are_not_called_are_refused(project, conf, message):
    (project / "gunicorn.conf.py").write_text(conf)
    result = ferrogate("-c", "gunicorn.conf.py", "hello:app", cwd=project)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr


def test_a_hook_in_a_toml_file_is_refused(project):
    (project / "ferrogate.toml").write_text('post_fork = "mymodule.post_fork"\n')
    result = ferrogate("hello:app", cwd=project)
    assert result.returncode == EXIT_USAGE
    assert "a server hook is a Python function" in result.stderr


def test_no_hooks_no_noise(project):
    """Without a config file no hook runs and nothing about hooks is logged."""
    assert not os.path.exists(project / "gunicorn.conf.py")
    result = ferrogate("--check-config", cwd=project)
    assert result.returncode == 0 and "hook" not in result.stderr


def test_master_event_hooks_on_hup_ttin_and_a_worker_exit(project):
    import signal as signals

    log = project / "hooks.log"
    server = served(project, HOOKS, {"HOOK_LOG": str(log)})
    try:
        wait_until_ready(server)
        first = server.wait_for_workers(2)
        server.send_signal(signals.SIGTTIN)
        server.wait_for_workers(3)
        server.send_signal(signals.SIGHUP)
        server.wait_for_log(r"retir", count=3, timeout=30)
        server.wait_for_workers(3, exclude=first, timeout=30)
    finally:
        assert server.stop() == 0, server.log()
    lines = [line.split() for line in log.read_text().splitlines()]
    master = str(server.pid)
    assert ["nworkers_changed", master, "3", "2"] in lines
    assert ["on_reload", master] in lines
    exits = [line for line in lines if line[0] == "child_exit"]
    exited = {pid for _, where, pid in exits if where == master}
    assert {str(pid) for pid in first} <= exited, lines
