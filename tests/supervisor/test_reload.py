"""SIGHUP to the master: fresh workers re-import the app and replace the old ones, each old
one retiring (finishing what it was doing) only once a new one accepts; service never stops,
and an app that no longer loads leaves the old workers serving (apps/reload_token.py)."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.serving import APPS_DIR, is_alive
from tests.supervisor.load import Load, MixedLoad

#: SIGHUPs in a row in the repeated-reload test.
RELOADS = 5


def answer(server, path: str = "/") -> dict:
    resp = server.request("GET", path, timeout=15)
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def imports(import_log) -> dict[int, str]:
    """pid -> token of every import of the app module so far."""
    lines = import_log.read_text().split("\n")
    return {int(pid): token for pid, token in (line.split() for line in lines if line)}


def imports_by(import_log, pids, timeout: float = 10) -> dict[int, str]:
    """imports(), once every one of ``pids`` has logged its import (a worker is listed as a
    child of the master before it has finished importing the app)."""
    deadline = time.monotonic() + timeout
    while True:
        found = imports(import_log)
        if set(pids) <= set(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


@pytest.mark.timeout(45)
def test_sighup_replaces_workers_and_reimports_the_app(serve, tmp_path):
    import_log = tmp_path / "imports.log"
    import_log.write_text("")
    env = {"IMPORT_LOG": str(import_log)}
    with serve("reload_token:app", "--workers", "2", env=env) as server:
        old = server.wait_for_workers(2)
        old_tokens = imports_by(import_log, old)
        assert set(old_tokens) == set(old), "each worker imports the app itself"
        assert answer(server)["token"] in old_tokens.values()

        with Load(server, ["/", "/", "/sleep?0.05"]) as load, ThreadPoolExecutor(1) as pool:
            load.wait_for_answers(20, since=0)
            # A request still running on an old worker when SIGHUP comes.
            in_flight = pool.submit(answer, server, "/sleep?1")
            time.sleep(0.3)
            mark = server.log_mark()
            hup_at = time.monotonic()
            server.send_signal(signal.SIGHUP)
            # Exactly two workers and none of the old: the old ones have exited.
            new = server.wait_for_workers(2, exclude=old, timeout=15)
            load.wait_for_answers(30, since=time.monotonic())
            slow = in_flight.result(timeout=15)

        assert slow["pid"] in old and slow["token"] == old_tokens[slow["pid"]], (
            "the in-flight request was not finished by its old worker"
        )
        assert load.failed() == [], f"requests failed during the reload: {load.failed()[:5]}"
        after_hup = [o.answer for o in load.ok() if o.started > hup_at]
        new_tokens = imports_by(import_log, new)
        assert {pid for pid in new_tokens if pid not in old} == set(new)
        assert not set(new_tokens[pid] for pid in new) & set(old_tokens.values())
        for a in after_hup:
            if a["pid"] in new:
                assert a["token"] == new_tokens[a["pid"]]
        assert {a["pid"] for a in after_hup} & set(new), "no new worker answered"

        for _ in range(20):
            a = answer(server)
            assert a["pid"] in new and a["token"] == new_tokens[a["pid"]]
        assert not [pid for pid in old if is_alive(pid)]
        assert server.is_running()
        server.wait_for_log(r"Reloading", since=mark)
        for pid in new:
            server.wait_for_log(rf"Booting worker with pid: {pid}\b", since=mark)


@pytest.mark.timeout(45)
def test_repeated_sighup_with_one_worker_keeps_serving(serve):
    # Several clients on fresh connections, so some connect just as the old worker retires.
    with serve("reload_token:app") as server:
        seen = server.wait_for_workers(1)
        tokens = {answer(server)["token"]}
        with Load(server, ["/"] * 5 + ["/sleep?0.05"]) as load:
            for _ in range(RELOADS):
                load.wait_for_answers(10, since=time.monotonic())
                server.send_signal(signal.SIGHUP)
                (pid,) = server.wait_for_workers(1, exclude=seen, timeout=15)
                seen.append(pid)
                a = answer(server)
                assert a["pid"] == pid
                assert a["token"] not in tokens, "the app module was not re-imported"
                tokens.add(a["token"])
            load.wait_for_answers(10, since=time.monotonic())
        assert load.failed() == [], f"requests failed during reloads: {load.failed()[:5]}"
        assert not [p for p in seen[:-1] if is_alive(p)]


@pytest.mark.timeout(60)
def test_three_sighups_under_keep_alive_and_fresh_connection_load_lose_no_request(serve):
    with serve("reload_token:app", "--workers", "2") as server:
        old = server.wait_for_workers(2)
        with MixedLoad(server, keep_alive=2, fresh=2) as load:
            for _ in range(3):
                load.wait_for_answers(50, since=time.monotonic())
                server.send_signal(signal.SIGHUP)
                new = server.wait_for_workers(2, exclude=old, timeout=15)
                old = new
            load.wait_for_answers(50, since=time.monotonic())
        sent, failed = len(load.outcomes), load.failed()
        print(f"\nSIGHUP x3: {sent} requests sent, {len(failed)} failed")
        assert failed == [], f"{len(failed)} of {sent} failed: {failed[:5]}"
        assert {o.answer["pid"] for o in load.ok()} & set(new)
        log = server.log()
        assert log.count("a new worker accepts in its place") == 6, log


GOOD_APP = (APPS_DIR / "reload_token.py").read_text()
BROKEN_APP = 'raise RuntimeError("this app is broken 5a1f")\n'


@pytest.mark.timeout(60)
def test_sighup_with_a_broken_app_keeps_the_old_workers_serving(serve, tmp_path):
    app_file = tmp_path / "hup_app.py"
    app_file.write_text(GOOD_APP)
    import_log = tmp_path / "imports.log"
    import_log.write_text("")
    env = {"IMPORT_LOG": str(import_log)}
    with serve(f"{app_file}:app", "--workers", "2", cwd=tmp_path, env=env) as server:
        old = server.wait_for_workers(2)
        # Each worker's token from its import, not from answers: twenty requests may all
        # land on one worker.
        old_tokens = imports_by(import_log, old)
        tokens = set(old_tokens.values())
        assert len(tokens) == 2
        app_file.write_text(BROKEN_APP)
        with Load(server, ["/", "/"]) as load:
            load.wait_for_answers(10, since=0)
            mark = server.log_mark()
            server.send_signal(signal.SIGHUP)
            server.wait_for_log(r"this app is broken 5a1f", since=mark)
            server.wait_for_log(
                r"Reload failed: worker \d+ could not load the app \(the error is above\); the 2 "
                r"old worker\(s\) keep serving",
                since=mark,
            )
            load.wait_for_answers(20, since=time.monotonic())
        assert load.failed() == [], load.failed()[:5]
        assert server.wait_for_workers(2) == old
        for _ in range(20):
            a = answer(server)
            assert a["token"] == old_tokens[a["pid"]], "the old code serves"
        assert server.is_running()

        app_file.write_text(GOOD_APP)  # fixed: the next reload goes through
        server.send_signal(signal.SIGHUP)
        new = server.wait_for_workers(2, exclude=old, timeout=15)
        assert answer(server)["pid"] in new
        assert not {answer(server)["token"] for _ in range(10)} & tokens
