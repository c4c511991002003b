"""SIGUSR2 to the master (unicorn's and gunicorn's binary upgrade): a new master starts from
the program on disk with the listening sockets inherited, the old pid file becomes
``.oldbin``, both serve until the operator stops the old one, and no request is refused or
reset on the way. A successor that fails to start leaves the old master serving, its pid file
back in place."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.serving import free_port, is_alive, serve, wait_for_text
from tests.supervisor.load import Load


def read_pid(path: Path, timeout: float = 20.0, other_than: int | None = None) -> int:
    """The pid in ``path`` once it exists (and differs from ``other_than``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text().strip()
            if text and int(text) != other_than:
                return int(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never held a pid other than {other_than}")


def wait_gone(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while is_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_usr2_starts_a_new_master_on_the_same_socket_without_a_failed_request(tmp_path):
    pid_file = tmp_path / "app.pid"
    import_log = tmp_path / "imports.log"
    import_log.write_text("")
    env = {"IMPORT_LOG": str(import_log)}
    with serve("reload_token:app", "--workers", "2", "--pid", str(pid_file), env=env) as old:
        old.wait_for_workers(2)
        assert read_pid(pid_file) == old.pid
        with Load(old, ["/", "/", "/sleep?0.05"]) as load:
            load.wait_for_answers(20, since=0)
            old.send_signal(signal.SIGUSR2)
            new_pid = read_pid(pid_file, other_than=old.pid)
            oldbin = Path(f"{pid_file}.oldbin")
            assert read_pid(oldbin) == old.pid
            old.wait_for_log(rf"started a new master \(pid {new_pid}\)")
            # The new master's workers answer beside the old ones.
            deadline = time.monotonic() + 30
            while True:
                answers = [o.answer for o in load.ok() if o.answer]
                if {a["pid"] for a in answers} - set(old.worker_pids()) - {old.pid}:
                    break
                assert time.monotonic() < deadline, f"no new worker answered\n{old.log()}"
                time.sleep(0.1)
            # The operator retires the old master once the new one serves.
            assert old.stop() == 0
            stopped_at = time.monotonic()
            assert is_alive(new_pid), f"the new master died with the old one\n{old.log()}"
            load.wait_for_answers(30, since=stopped_at)

        assert load.failed() == [], f"requests failed across the upgrade: {load.failed()[:5]}"
        after = [o.answer for o in load.ok() if o.started > stopped_at]
        assert after, "nothing was served after the old master stopped"
        assert read_pid(pid_file) == new_pid
        assert not oldbin.exists(), "the old master leaves no .oldbin behind"
        # The successor re-imported the app: a new module, not a forked copy.
        assert {a["token"] for a in after} & set(
            line.split()[1] for line in import_log.read_text().splitlines()
        )
        os.kill(new_pid, signal.SIGTERM)
        wait_gone(new_pid)
        assert not pid_file.exists(), "the new master removes its pid file at exit"


@pytest.mark.timeout(60)
def test_a_successor_that_cannot_start_leaves_the_old_master_serving(tmp_path):
    config = tmp_path / "ferrogate.toml"
    config.write_text("workers = 1\n")
    pid_file = tmp_path / "app.pid"
    with serve("hello:app", "-c", str(config), "--pid", str(pid_file)) as server:
        server.wait_for_workers(1)
        config.write_text("workers = 'many'\n")  # the new master refuses this config
        mark = server.log_mark()
        server.send_signal(signal.SIGUSR2)
        server.wait_for_log(r"The new master \d+ exited with code 2; this one serves on",
                            since=mark)
        wait_for_text(lambda: pid_file.read_text() if pid_file.exists() else "", rf"^{server.pid}$")
        assert not Path(f"{pid_file}.oldbin").exists()
        assert "workers" in server.log_since(mark), "the successor's error names the setting"
        assert server.get("/").status == 200


def test_usr2_while_a_successor_runs_is_ignored(tmp_path):
    pid_file = tmp_path / "app.pid"
    bind = f"127.0.0.1:{free_port()}"
    with serve("hello:app", "--pid", str(pid_file), binds=[bind]) as server:
        server.wait_for_workers(1)
        server.send_signal(signal.SIGUSR2)
        new_pid = read_pid(pid_file, other_than=server.pid)
        mark = server.log_mark()
        server.send_signal(signal.SIGUSR2)
        server.wait_for_log(rf"the new master {new_pid} is still running; ignored", since=mark)
        os.kill(new_pid, signal.SIGTERM)
        server.wait_for_log(rf"The new master {new_pid} exited with code 0", since=mark)
        wait_for_text(lambda: pid_file.read_text() if pid_file.exists() else "", rf"^{server.pid}$")
        assert server.get("/").status == 200


def test_pre_exec_hook_runs_in_the_old_master_before_the_new_one_starts(tmp_path):
    marker = tmp_path / "pre_exec.txt"
    config = tmp_path / "gunicorn.conf.py"
    config.write_text(
        "import os\n"
        "def pre_exec(server):\n"
        f"    open({str(marker)!r}, 'w').write(str(server.pid))\n"
    )
    pid_file = tmp_path / "app.pid"
    with serve("hello:app", "-c", str(config), "--pid", str(pid_file)) as server:
        server.wait_for_workers(1)
        server.send_signal(signal.SIGUSR2)
        new_pid = read_pid(pid_file, other_than=server.pid)
        assert marker.read_text() == str(server.pid)
        os.kill(new_pid, signal.SIGTERM)
        wait_gone(new_pid)
