"""SIGUSR1 reopens the log files in the master and every worker, as logrotate's postrotate
expects (the README's logrotate recipe): lines written after the signal go to the new files,
and nothing is lost or written to the rotated ones."""

from __future__ import annotations

import signal
import time

from tests.serving import serve, wait_for_text


def test_usr1_after_a_rotation_moves_both_logs_to_new_files(tmp_path):
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    flags = ["--workers", "2", "--error-log", str(error_log), "--access-log", str(access_log)]
    with serve("hello:app", *flags) as server:
        workers = server.wait_for_workers(2)
        wait_for_text(error_log.read_text, r"Booting worker", count=2)
        for _ in range(4):
            assert server.get("/before").status == 200
        # What logrotate does: rename, then run postrotate (kill -USR1 master).
        error_log.rename(tmp_path / "error.log.1")
        access_log.rename(tmp_path / "access.log.1")
        server.send_signal(signal.SIGUSR1)
        # The master and each worker say so in the new file once they have reopened.
        wait_for_text(lambda: error_log.read_text() if error_log.exists() else "",
                      r"SIGUSR1: reopened the log files", count=3)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for _ in range(4):  # both workers answer some of them
                assert server.get("/after").status == 200
            if access_log.exists() and access_log.read_text().count("/after") >= 4:
                break
            time.sleep(0.1)
        assert server.worker_pids() == workers, "USR1 must not restart workers"
    rotated = (tmp_path / "access.log.1").read_text()
    assert rotated.count("GET /before") == 4 and "/after" not in rotated
    fresh = access_log.read_text()
    assert "/before" not in fresh and fresh.count("GET /after") >= 4
    assert "Shutdown complete" in error_log.read_text()
    assert "Shutdown complete" not in (tmp_path / "error.log.1").read_text()
