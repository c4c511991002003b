"""--control-socket and ``ferrogate ctl``: status, workers +1/-1/N, kill PID, reload and
log-reopen against a real master, the socket's mode 0600 as its access control (another
user cannot connect), and the file removed at exit (apps/queue_time.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

from tests import serving


def ctl(sock, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ferrogate", "ctl", "--socket", str(sock), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=serving.server_env(),
    )


def ctl_json(sock, *args: str) -> dict:
    done = ctl(sock, "--json", *args)
    return json.loads(done.stdout)


@pytest.mark.timeout(90)
def test_ctl_commands_drive_the_master(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    with serve("queue_time:app", "--workers", "2", "--control-socket", str(sock)) as server:
        first = server.wait_for_workers(2)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        for _ in range(3):
            server.get("/")
        status = ctl_json(sock, "status")
        assert status["ok"] and status["master"] == server.pid
        assert sorted(w["pid"] for w in status["workers"]) == first
        assert sum(w["requests"] for w in status["workers"]) == 3
        assert all(w["rss_mib"] > 1 for w in status["workers"])
        human = ctl(sock, "status")
        assert human.returncode == 0 and f"master {server.pid}" in human.stdout

        assert ctl(sock, "workers", "+1").returncode == 0
        server.wait_for_workers(3)
        assert ctl(sock, "workers", "-1").returncode == 0
        server.wait_for_workers(2)
        assert ctl(sock, "workers", "3").returncode == 0
        three = server.wait_for_workers(3)

        victim = three[0]
        done = ctl(sock, "kill", str(victim))
        assert done.returncode == 0, done.stderr
        server.wait_for_workers(3, exclude=[victim])
        refused = ctl(sock, "kill", "1")
        assert refused.returncode == 1 and "not a worker" in refused.stderr

        mark = server.log_mark()
        assert ctl(sock, "log-reopen").returncode == 0
        server.wait_for_log("SIGUSR1: reopened the log files", since=mark)
        before = server.worker_pids()
        assert ctl(sock, "reload").returncode == 0
        server.wait_for_workers(3, exclude=before, timeout=30)

        bad = ctl(sock, "workers", "0")
        assert bad.returncode == 1 and "at least one" in bad.stderr
    assert not sock.exists()


def test_another_user_cannot_connect(serve, tmp_path):
    assert os.getuid() == 0, "the tests run as root (as CI does): root can become another user"
    os.chmod(tmp_path, 0o755)
    sock = tmp_path / "ctl.sock"
    with serve("queue_time:app", "--control-socket", str(sock)):
        probe = (
            "import os, socket\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            f"    s.connect({str(sock)!r})\n"
            "    print('connected')\n"
            "except PermissionError:\n"
            "    print('refused')\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert out.stdout.strip() == "refused", out
        # Its owner can.
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(sock))


def test_without_a_master_ctl_says_so(tmp_path):
    done = ctl(tmp_path / "nothing.sock", "status")
    assert done.returncode == 2 and "cannot reach" in done.stderr


def test_the_control_thread_takes_no_signals_meant_for_the_master(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    with serve("queue_time:app", "--control-socket", str(sock)) as server:
        blocked = serving.thread_signal_mask(server.pid, "ferrogate-ctl")
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGTTIN):
            assert blocked & (1 << (sig - 1)), sig
