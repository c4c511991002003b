"""Planned retirements: a worker that has served --max-requests (plus its jitter), or whose
resident memory grew over --max-worker-memory, asks the master to retire. The master starts
its replacement first; only once that one accepts does the old worker stop accepting and
drain, as on SIGTERM. No request fails, the exit is not a crash (no back-off, its own exit
code); a replacement that cannot load the app leaves the old worker serving
(apps/reload_token.py, apps/hoard.py)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.serving import APPS_DIR, is_alive, proc_status_kib, server_env
from tests.supervisor.load import Load, MixedLoad, served_by

#: Exit code of a worker after a retirement it asked for (src/supervisor/master.rs).
EXIT_WORKER_RETIRED = 5
#: Retirements to see under load before the test ends.
RETIREMENTS = 6
GOOD_APP = (APPS_DIR / "reload_token.py").read_text()


def retirements(server) -> list[int]:
    return [int(pid) for pid in re.findall(r"Worker (\d+) retired \(", server.log())]


@pytest.mark.timeout(90)
def test_max_requests_retirements_under_load_lose_no_request(serve):
    with serve("reload_token:app", "--workers", "2", "--max-requests", "50") as server:
        first = server.wait_for_workers(2)
        with MixedLoad(server, keep_alive=2, fresh=2) as load:
            deadline = time.monotonic() + 60
            while len(retirements(server)) < RETIREMENTS and time.monotonic() < deadline:
                time.sleep(0.1)
            load.wait_for_answers(20, since=time.monotonic())
        sent, failed = len(load.outcomes), load.failed()
        print(
            f"\nmax-requests: {sent} requests sent, {len(failed)} failed, "
            f"{len(retirements(server))} retirements, "
            f"{load.keep_alive_connections()} keep-alive connections"
        )
        assert failed == [], f"{len(failed)} of {sent} failed: {failed[:5]}"
        retired = retirements(server)
        assert len(retired) >= RETIREMENTS, server.log()
        assert set(first) <= set(retired)
        served = Counter(o.answer["pid"] for o in load.ok())
        for pid in retired:
            # Each had its replacement accepting before it stopped: it served at least 50.
            assert served[pid] >= 50 or pid in first, (pid, served[pid])
        log = server.log()
        assert f"exited with code {EXIT_WORKER_RETIRED})" in log
        assert "asks to retire (--max-requests, " in log
        assert "starting a new one" not in log, "a planned retirement was taken for a crash"
        assert "early exit" not in log
        # Keep-alive connections were kept between retirements, and reopened after them.
        assert 1 < load.keep_alive_connections() < sent // 10


@pytest.mark.timeout(60)
def test_max_requests_jitter_spreads_the_retirement_counts(serve):
    flags = ["--workers", "6", "--max-requests", "20", "--max-requests-jitter", "10"]
    with serve("reload_token:app", *flags, "--log-level", "debug") as server:
        server.wait_for_workers(6)
        counts = [
            int(m.group(1))
            for m in server.wait_for_log(r"This worker retires after (\d+) requests", count=6)
        ]
    assert all(20 <= count <= 30 for count in counts), counts
    assert len(set(counts)) > 1, f"six workers all drew {counts[0]}"


@pytest.mark.timeout(60)
def test_worker_over_the_memory_limit_retires_after_its_replacement_accepts(serve):
    with serve("hoard:app", "--max-worker-memory", "150") as server:
        (worker,) = server.wait_for_workers(1)
        assert proc_status_kib(worker, "VmRSS") < 150 * 1024
        with MixedLoad(server, keep_alive=1, fresh=1) as load:
            load.wait_for_answers(10, since=0)
            for _ in range(4):
                assert server.get("/hoard?50").status == 200
            (replacement,) = server.wait_for_workers(1, exclude=[worker], timeout=15)
            load.wait_for_answers(20, since=time.monotonic())
        assert load.failed() == [], load.failed()[:5]
        assert not is_alive(worker)
        server.wait_for_log(
            r"Retiring: resident memory \d+ MiB is over --max-worker-memory 150 MiB"
        )
        server.wait_for_log(rf"Worker {worker} asks to retire \(--max-worker-memory")
        server.wait_for_log(rf"Worker {worker} retired \(exited with code {EXIT_WORKER_RETIRED}\)")
        assert served_by(server) == replacement
        assert proc_status_kib(replacement, "VmRSS") < 150 * 1024
        assert "starting a new one" not in server.log()


@pytest.mark.timeout(60)
def test_replacement_that_cannot_load_the_app_leaves_the_old_worker_serving(serve, tmp_path):
    app_file = tmp_path / "retiring_app.py"
    app_file.write_text(GOOD_APP)
    with serve(f"{app_file}:app", "--max-requests", "20", cwd=tmp_path) as server:
        (worker,) = server.wait_for_workers(1)
        # Serving first: a forked worker may not have imported the app yet, and breaking
        # the file then breaks the first worker itself.
        assert served_by(server) == worker
        app_file.write_text('raise RuntimeError("broken meanwhile 9c2e")\n')
        for _ in range(25):
            assert served_by(server) == worker
        server.wait_for_log(
            r"Worker \d+ could not load the app \(the error is above\); the other workers keep "
            r"serving; trying again in 1s"
        )
        with Load(server, ["/"]) as load:
            load.wait_for_answers(20, since=0)
        assert load.failed() == [] and {o.answer["pid"] for o in load.ok()} == {worker}

        app_file.write_text(GOOD_APP)  # fixed: a later attempt loads it and takes over
        (replacement,) = server.wait_for_workers(1, exclude=[worker], timeout=20)
        assert served_by(server) == replacement
        server.wait_for_log(rf"Worker {worker} retired \(exited with code {EXIT_WORKER_RETIRED}\)")


def test_gunicorn_config_names_carry_over(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(
        "timeout = 5\nmax_requests = 100\nmax_requests_jitter = 10\n"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "ferrogate", "--check-config", "-c", "gunicorn.conf.py"],
        cwd=tmp_path,
        env=server_env({"FERROGATE_MAX_WORKER_MEMORY": "300"}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    for line in [
        r"timeout = 5 +# gunicorn.conf.py line 1",
        r"max_requests = 100 +# gunicorn.conf.py line 2",
        r"max_requests_jitter = 10 +# gunicorn.conf.py line 3",
        r"max_worker_memory = 300 +# env FERROGATE_MAX_WORKER_MEMORY",
    ]:
        assert re.search(line, checked.stdout), checked.stdout
