"""RateLimit with a Redis store, against a real redis-server: two hosts (two ferrogate
masters, or two wsgiref servers) spend one budget; a stopped Redis lets requests through with
a throttled warning (fail open) or answers 503 (fail closed); a Redis that does not answer
holds a request no longer than redis_timeout. tests/apps/rate_limit_redis.py is the app."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import make_server

import pytest

from tests import serving
from tests.middleware.conftest import QuietHandler, Way
from tests.middleware.test_cases import Answer, send

#: The store's timeout in these tests (the default): a request it bounds ends well within 1 s.
REDIS_TIMEOUT_S = 0.05
WARNING = r"RateLimit: Redis at 127\.0\.0\.1:{port}: .*"


class Redis:
    """One redis-server on a free port, with no persistence, that a test may stop, start
    again on the same port, or freeze (SIGSTOP: connections are accepted, nothing answers)."""

    def __init__(self, workdir: Path):
        self.server = shutil.which("redis-server")
        self.cli = shutil.which("redis-cli")
        if not self.server or not self.cli:
            pytest.fail("redis-server and redis-cli are needed: `make test-tools` installs them")
        self.workdir = workdir
        self.port = serving.free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.server,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self._pongs():
            assert self.proc.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, f"redis-server does not answer on {self.port}"
            time.sleep(0.02)

    def _pongs(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @contextmanager
    def frozen(self) -> Iterator[None]:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def cli_call(self, *args: str) -> str:
        done = subprocess.run(
            [self.cli, "-p", str(self.port), *args], capture_output=True, check=True, timeout=10
        )
        return done.stdout.decode()


@pytest.fixture
def redis(tmp_path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def new_key() -> dict[str, str]:
    """A key of its own for each test, so no test spends another's budget."""
    return {"X-Client-Key": uuid.uuid4().hex}


def timed(way: Way, key: dict[str, str]) -> tuple[Answer, float]:
    started = time.monotonic()
    answer = send(way, "GET", "/", key)
    return answer, time.monotonic() - started


def ferrogate(redis: Redis, *flags: str, spec: str = "rate_limit_redis:app", **env: str):
    return serving.serve(spec, *flags, env={"REDIS_URL": redis.url, **env})


@contextmanager
def wsgiref_host(app) -> Iterator[Way]:
    httpd = make_server("127.0.0.1", 0, app, handler_class=QuietHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Way("wsgiref", "127.0.0.1", httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def app_module():
    sys.path.insert(0, str(serving.APPS_DIR))
    try:
        return importlib.import_module("rate_limit_redis")
    finally:
        sys.path.remove(str(serving.APPS_DIR))


def assert_one_budget_across(hosts: list[Way], redis: Redis) -> None:
    """3/h: three requests in all, whichever host takes them; then 429 everywhere."""
    key = new_key()
    answers = [send(hosts[i % len(hosts)], "GET", "/", key) for i in range(6)]
    assert [a.status for a in answers] == [200, 200, 200, 429, 429, 429], answers
    # The hosts count down one budget in turn.
    assert [a.headers["ratelimit"] for a in answers[:3]] == [
        f'"default";r={left};t={t}' for left, t in ((2, 1200), (1, 2400), (0, 3600))
    ]
    for refused in answers[3:]:
        assert refused.body == b"429 Too Many Requests\n"
        assert int(refused.headers["retry-after"]) in (1199, 1200)
        assert refused.headers["ratelimit-policy"] == '"default";q=3;w=3600'
    # The key expires when its debt is paid: Redis keeps only keys in debt.
    stored = redis.cli_call("--scan", "--pattern", "ferrogate:rl:3/hour-3:*").split()
    assert stored == [f"ferrogate:rl:3/hour-3:{key['X-Client-Key']}"]
    ttl_ms = int(redis.cli_call("PTTL", stored[0]))
    assert 3_590_000 < ttl_ms <= 3_600_000


def warnings_in(log: str, redis: Redis) -> list[str]:
    return re.findall(WARNING.format(port=redis.port), log)


@pytest.mark.timeout(60)
def test_two_ferrogate_hosts_share_one_budget(redis):
    with ferrogate(redis) as first, ferrogate(redis) as second:
        assert first.pid != second.pid
        hosts = [Way("lifted", s.host, s.port) for s in (first, second)]
        assert_one_budget_across(hosts, redis)
        assert not warnings_in(first.log() + second.log(), redis)


@pytest.mark.timeout(60)
def test_two_wsgiref_hosts_calling_the_object_share_one_budget(redis):
    module = app_module()
    # Two objects, as two hosts would each build their own.
    first, second = module.make(redis.url), module.make(redis.url)
    with wsgiref_host(first) as first_host, wsgiref_host(second) as second_host:
        assert_one_budget_across([first_host, second_host], redis)


@pytest.mark.timeout(60)
def test_redis_stopped_fails_open_with_one_warning_a_second_then_counts_again(redis):
    with ferrogate(redis) as server:
        way = Way("lifted", server.host, server.port)
        key = new_key()
        assert send(way, "GET", "/", key).headers["ratelimit"].startswith('"default";r=2;')
        redis.stop()
        started = time.monotonic()
        answers = [timed(way, key) for _ in range(10)]
        elapsed = time.monotonic() - started
        for answer, took in answers:
            assert answer.status == 200 and answer.body == b"counted\n", answer
            assert "ratelimit" not in answer.headers, "nothing was counted, so no count is told"
            assert took < 0.5, f"a request waited {took:.3f} s for a stopped Redis"
        server.wait_for_log(WARNING.format(port=redis.port))
        lines = warnings_in(server.log(), redis)
        # One line a second at most (the run may straddle a second boundary).
        assert 1 <= len(lines) <= int(elapsed) + 2, (elapsed, lines)
        assert len(lines) < len(answers)
        assert "letting requests through uncounted" in lines[0]
        # Redis back on the same port: the worker reconnects and counts again.
        redis.start()
        deadline = time.monotonic() + 15
        while "ratelimit" not in (answer := send(way, "GET", "/", key)).headers:
            assert time.monotonic() < deadline, "requests are not counted again"
            time.sleep(0.2)
        # A fresh Redis: the key's budget starts whole.
        assert answer.headers["ratelimit"].startswith('"default";r=2;'), answer


@pytest.mark.timeout(60)
def test_redis_stopped_fails_closed_with_503_from_the_setting(redis):
    spec = f"3/h,key=header:X-Client-Key,store={redis.url},fail=closed"
    with ferrogate(redis, "--rate-limit", spec, spec="hello:app") as server:
        way = Way("lifted", server.host, server.port)
        key = new_key()
        assert send(way, "GET", "/", key).status == 200
        redis.stop()
        for _ in range(3):
            answer, took = timed(way, key)
            assert answer.status == 503, answer
            assert answer.headers["retry-after"] == "1"
            assert answer.body == b"503 Service Unavailable\n"
            assert took < 0.5
        assert "answering 503" in server.wait_for_log(WARNING.format(port=redis.port))[0][0]


@pytest.mark.timeout(60)
def test_redis_stopped_fails_closed_under_wsgiref(redis):
    with wsgiref_host(app_module().make(redis.url, fail_open=False)) as way:
        key = new_key()
        assert send(way, "GET", "/", key).status == 200
        redis.stop()
        answer = send(way, "GET", "/", key)
        assert (answer.status, answer.headers["retry-after"]) == (503, "1"), answer


@pytest.mark.timeout(60)
@pytest.mark.parametrize("fail", ["open", "closed"])
def test_a_redis_that_does_not_answer_holds_a_lifted_request_only_redis_timeout(redis, fail):
    # 100/h: the requests sent while frozen still reach Redis when it wakes, and count.
    with ferrogate(redis, RL_FAIL=fail, RL_RATE="100/h") as server:
        way = Way("lifted", server.host, server.port)
        key = new_key()
        assert send(way, "GET", "/", key).status == 200  # connected
        with redis.frozen():
            for _ in range(3):
                answer, took = timed(way, key)
                assert answer.status == (200 if fail == "open" else 503), answer
                assert took < 0.5, f"{took:.3f} s with redis_timeout={REDIS_TIMEOUT_S}"
        # Once Redis answers again, so does the count (late replies are not taken for new ones).
        deadline = time.monotonic() + 15
        while "ratelimit" not in (answer := send(way, "GET", "/", key)).headers:
            assert time.monotonic() < deadline, "requests are not counted again"
            time.sleep(0.2)
        assert answer.status == 200
        assert re.match(r'"default";r=9[0-8];', answer.headers["ratelimit"]), answer


@pytest.mark.timeout(60)
def test_a_redis_that_does_not_answer_holds_a_wsgi_call_only_redis_timeout(redis):
    with wsgiref_host(app_module().make(redis.url, rate="100/h")) as way:
        key = new_key()
        assert send(way, "GET", "/", key).status == 200  # connected
        with redis.frozen():
            for _ in range(3):
                answer, took = timed(way, key)
                assert answer.status == 200 and "ratelimit" not in answer.headers, answer
                # At most a connect and a read, each bounded by the timeout.
                assert took < 0.5, f"{took:.3f} s with redis_timeout={REDIS_TIMEOUT_S}"
        # The connection a timeout left with a reply pending was dropped: no reply mismatch.
        answer = send(way, "GET", "/", key)
        assert re.match(r'"default";r=9[0-8];', answer.headers["ratelimit"]), answer


def test_a_bad_store_is_refused_when_the_object_is_built():
    from ferrogate.middleware import RateLimit

    with pytest.raises(ValueError, match="store"):
        RateLimit(None, "1/s", store="http://not-redis")
    with pytest.raises(ValueError, match="redis_timeout"):
        RateLimit(None, "1/s", store="redis://127.0.0.1:6379/0", redis_timeout=0)
