"""A request timeout per mount (``--mount PREFIX=APP,request_timeout=SECONDS``, or
``Mount(..., request_timeouts=...)``): it replaces --request-timeout for the requests of the
app mounted there (0: none for them); another mount's slow request completes meanwhile."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from ferrogate.middleware import Mount

TIMEOUT_S = 1.0


def timed(server, path: str):
    started = time.monotonic()
    resp = server.get(path)
    return resp.status, time.monotonic() - started


def run_both(server, short: str, long: str):
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(timed, server, long)
        time.sleep(0.1)
        ended = pool.submit(timed, server, short)
        return ended.result(20), slow.result(20)


@pytest.mark.timeout(40)
@pytest.mark.parametrize("via", ["--mount", "Mount"])
def test_a_short_mount_timeout_ends_its_request_while_the_other_mount_completes(serve, via):
    if via == "--mount":
        args = (
            "queue_time:app",
            "--mount",
            f"/short=runaway:app,request_timeout={TIMEOUT_S}",
            "--mount",
            "/long=queue_time:app",
        )
        runaway = "/short/sleep"
    else:
        args = ("mount_timeouts:app",)
        # apps/mount_timeouts.py imports runaway's `sleep` before the Mount slices time.sleep:
        # a pure-Python loop is what a timeout set only through the API surely ends.
        runaway = "/short/spin"
    with serve(*args, "--threads", "4") as server:
        # Below the timeout: answered.
        assert timed(server, "/short/")[0] == 200
        (status, took), (slow_status, slow_took) = run_both(server, runaway, "/long/sleep?2.5")
        print(f"{via}: 504 after {took:.3f}s; the other mount's 2.5 s request {slow_took:.3f}s")
        assert status == 504 and TIMEOUT_S <= took < TIMEOUT_S + 1, (status, took)
        # Above it, on the mount without one: completes.
        assert slow_status == 200 and slow_took >= 2.5
        assert "past its request timeout (1.0s)" in server.log()


@pytest.mark.timeout(40)
def test_a_mount_timeout_of_zero_exempts_it_from_the_global_one(serve):
    flags = (
        "--request-timeout",
        str(TIMEOUT_S),
        "--mount",
        "/free=queue_time:app,request_timeout=0",
    )
    with serve("runaway:app", *flags, "--threads", "4") as server:
        (status, took), (free_status, free_took) = run_both(server, "/sleep", "/free/sleep?2")
        assert status == 504 and TIMEOUT_S <= took < TIMEOUT_S + 1, (status, took)
        assert free_status == 200 and free_took >= 2


@pytest.mark.timeout(40)
def test_a_mount_timeout_longer_than_the_global_one_replaces_it(serve):
    flags = ("--request-timeout", "0.5", "--mount", "/patient=queue_time:app,request_timeout=3")
    with serve("runaway:app", *flags, "--threads", "4") as server:
        status, took = timed(server, "/patient/sleep?1.5")
        assert status == 200 and took >= 1.5


def test_a_bad_mount_timeout_is_refused_naming_it(serve):
    from tests import serving

    server = serving.start(
        ["queue_time:app", "--mount", "/a=runaway:app,request_timeout=-1"],
        binds=[f"127.0.0.1:{serving.free_port()}"],
        wait_ready=False,
    )
    assert server.wait(15) == 2
    assert "request_timeout" in server.log() and "--mount" in server.log()


def test_the_mount_api_checks_its_request_timeouts():
    def app(environ, start_response):
        return []

    with pytest.raises(ValueError, match="no app is mounted at"):
        Mount({"/a": app}, request_timeouts={"/b": 1})
    with pytest.raises(ValueError, match="not a number of seconds"):
        Mount({"/a": app}, request_timeouts={"/a": -1})
    assert "Mount(/a)" in repr(Mount({"/a": app}, request_timeouts={"/a": 2.5}))
