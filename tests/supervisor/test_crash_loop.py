"""A worker that dies at start over and over is not restarted in a fork loop: each young
death in a row doubles the pause before the next attempt (1 s, 2 s, 4 s ...), the log names
the exit status or signal, and a worker that lived long enough is replaced at once
(apps/crash_at_start.py)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.supervisor.load import served_by

#: Attempts that die before the app loads.
CRASHES = 3
#: The pauses after each of them (src/supervisor/backoff.rs).
PAUSES_S = [1.0, 2.0, 4.0]
#: What an attempt may add to its pause: reaping, forking, importing on a busy machine.
SLACK_S = 1.5
#: A worker that lived this long is not "young" (backoff::STABLE_LIFETIME).
STABLE_LIFETIME_S = 5.0


def attempts(import_log) -> list[tuple[int, float]]:
    """(pid, time.monotonic()) of each import of the app so far."""
    lines = import_log.read_text().splitlines() if import_log.exists() else []
    return [(int(pid), float(at)) for pid, at in (line.split() for line in lines)]


@pytest.mark.timeout(60)
def test_crash_loop_backs_off_exponentially_then_serves(serve, tmp_path):
    import_log = tmp_path / "imports.log"
    env = {"IMPORT_LOG": str(import_log), "CRASHES": str(CRASHES)}
    with serve("crash_at_start:app", env=env) as server:
        deadline = time.monotonic() + sum(PAUSES_S) + (CRASHES + 1) * SLACK_S + 5
        while len(attempts(import_log)) <= CRASHES and time.monotonic() < deadline:
            time.sleep(0.05)
        worker = served_by(server)
        tries = attempts(import_log)
        assert len(tries) == CRASHES + 1 and tries[-1][0] == worker, tries
        gaps = [later - earlier for (_, earlier), (_, later) in zip(tries, tries[1:])]
        for gap, pause in zip(gaps, PAUSES_S):
            assert pause <= gap < pause + SLACK_S, f"gaps {gaps}, pauses {PAUSES_S}"
        first, second, third = (pid for pid, _ in tries[:3])
        log = server.log()
        assert f"Worker {first} exited with code 13 after" in log
        assert f"Worker {second} was killed by signal 11 (SIGSEGV) after" in log
        assert "starting a new one in 1s (1 early exit(s) in a row)" in log
        assert "starting a new one in 2s (2 early exit(s) in a row)" in log
        assert "starting a new one in 4s (3 early exit(s) in a row)" in log
        assert f"Worker {third} exited with code 13" in log

        # A worker that lived long enough starts its line afresh: replaced at once.
        time.sleep(max(0.0, tries[-1][1] + STABLE_LIFETIME_S + 0.2 - time.monotonic()))
        mark = server.log_mark()
        os.kill(worker, signal.SIGKILL)
        (replacement,) = server.wait_for_workers(1, exclude=[worker], timeout=5)
        line = server.wait_for_log(rf"Worker {worker} was killed by signal 9 .*", since=mark)[0]
        assert line.group(0).endswith("starting a new one"), line.group(0)
        assert served_by(server) == replacement
