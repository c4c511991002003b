"""What lifting buys and what only ferrogate does: layers answer while the app holds the GIL,
the rate limit is shared by every worker, the IP filter sees the client behind a trusted
proxy, and the middleware settings build the same layers without code."""

from __future__ import annotations

import glob
import json
import os
import statistics
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests import serving
from tests.middleware.conftest import HELLO, Way
from tests.middleware.test_cases import send


def latencies_ms(way: Way, path: str, count: int, expect: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        answer = send(way, "GET", path)
        out.append((time.perf_counter() - started) * 1000)
        assert answer.status == expect, (path, answer)
    return out


def percentile(values: list[float], pct: int) -> float:
    return statistics.quantiles(values, n=100)[pct - 1]


#: How long /spin holds the GIL while the layers are measured beside it.
SPIN_S = 20


def spin(server, seconds: float) -> None:
    """GET /spin?SECONDS, waiting for the answer however long the machine makes it take."""
    resp = server.request("GET", f"/spin?{seconds}", timeout=seconds + 30)
    assert resp.status == 200, resp.text


def python_cpu_s(pid: int) -> float:
    """CPU seconds used so far by ``pid``'s Python threads (named ferrogate-py-N)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            if not (task / "comm").read_text().startswith("ferrogate-py-"):
                continue
            # utime and stime: fields 14 and 15, counted after the ")" that ends comm.
            fields = (task / "stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def split_cores(pid: int) -> None:
    """The worker's Python threads on one core, its other threads (the I/O runtime, the
    blocking pool that reads static files, and those they start) on the others: as the
    scheduler places them on an idle 2-core machine. On a loaded one a file read's hop to a
    blocking thread would otherwise wait out the spinning thread's time slice (~4 ms), which
    is CPU, not the GIL."""
    cores = sorted(os.sched_getaffinity(pid))
    for task in Path(f"/proc/{pid}/task").iterdir():
        python = (task / "comm").read_text().startswith("ferrogate-py-")
        os.sched_setaffinity(int(task.name), cores[:1] if python else cores[1:])


def wait_until_python_computes(pid: int, timeout: float = 20.0) -> None:
    """Wait until the worker's Python threads have computed for 0.2 s: a fixed sleep after
    sending /spin may end, on a loaded machine, before the request reached the app."""
    deadline = time.monotonic() + timeout
    while python_cpu_s(pid) < 0.2:
        assert time.monotonic() < deadline, "the app never started computing"
        time.sleep(0.02)


@pytest.mark.timeout(120)
def test_layers_answer_while_a_python_request_holds_the_gil(static_root):
    env = {"STATIC_ROOT": str(static_root)}
    with (
        serving.serve("gil_hog_stack:app", "--threads", "4", env=env) as server,
        serving.favoured(server),  # the time slices of other processes are not the GIL's
    ):
        way = Way("lifted", server.host, server.port)
        send(way, "GET", "/limited/x")  # spends the one request /limited allows
        # The spin must outlast the three windows of measurements even on a loaded machine
        # (each can take seconds there), and its client must wait for its answer: with
        # send()'s 10 s timeout a 10 s spin always ended its thread early, so is_alive()
        # below no longer said whether the app was still computing.
        spinning = threading.Thread(target=spin, args=(server, SPIN_S))
        spinning.start()
        (worker,) = server.wait_for_workers(1)
        wait_until_python_computes(worker)  # the app now holds the GIL
        split_cores(worker)
        try:
            measure_beside_the_spin(way, spinning)
        finally:
            spinning.join()  # the server is stopped only once the spin ended


def measure_beside_the_spin(way: Way, spinning: threading.Thread) -> None:
    """A request that needed the GIL would wait for the spinning thread's switch interval
    (5 ms) several times over; these need none. Up to three windows of measurements, so a
    burst of load from elsewhere on this 2-core machine (which delays every thread alike) is
    not taken for waiting on the GIL."""
    windows = []
    for _ in range(3):
        measured = {
            "static": latencies_ms(way, "/static/hello.txt", 100, 200),
            "403": latencies_ms(way, "/denied/x", 100, 403),
            "429": latencies_ms(way, "/limited/x", 100, 429),
        }
        assert spinning.is_alive(), "the measurements must run while the app spins"
        summary = {
            what: (statistics.median(values), percentile(values, 95))
            for what, values in measured.items()
        }
        windows.append(summary)
        if all(median < 2 and p95 < 10 for median, p95 in summary.values()):
            break
    else:
        pytest.fail(f"(median, p95) ms beside a GIL-bound request, per window: {windows}")


@pytest.mark.timeout(60)
def test_the_rate_limit_is_shared_by_every_worker_and_its_table_removed_at_exit(static_root):
    env = {"STATIC_ROOT": str(static_root)}
    # --reuse-port: the kernel spreads fresh connections over the workers' own sockets.
    with serving.serve("gil_hog_stack:app", "--workers", "3", "--reuse-port", env=env) as server:
        server.wait_for_workers(3)
        way = Way("lifted", server.host, server.port)
        # A worker still binding its socket takes none: go on until two took some.
        pids: set = set()
        deadline = time.monotonic() + 20
        while len(pids) < 2:
            assert time.monotonic() < deadline, "the connections should reach several workers"
            pids.add(json.loads(send(way, "GET", "/x").body)["pid"])
        # Fresh connections land on the three workers; one request is allowed in all.
        statuses = [send(way, "GET", "/limited/x").status for _ in range(30)]
        assert statuses.count(200) == 1 and statuses.count(429) == 29, statuses
        tables = glob.glob(f"/dev/shm/ferrogate-ratelimit-{server.pid}-*")
        assert tables, "the workers share a table named for their master"
    assert not any(glob.glob(path) for path in tables), "the master removes its tables"


def test_ip_filter_sees_the_client_behind_a_trusted_proxy(static_root):
    env = {"STATIC_ROOT": str(static_root)}
    with serving.serve("middleware_stack:app", env=env) as server:
        way = Way("lifted", server.host, server.port)
        # 127.0.0.1 is a trusted proxy by default: the client is the forwarded address.
        forwarded = send(way, "GET", "/private/x", {"X-Forwarded-For": "198.51.100.7"})
        assert forwarded.status == 200 and forwarded.json()["app"] == "private"
        assert send(way, "GET", "/private/x").status == 403
        # A request id from a trusted proxy is kept though the client is someone else.
        kept = send(way, "GET", "/api/x", {"X-Forwarded-For": "198.51.100.7",
                                            "X-Request-ID": "from-proxy"})
        assert kept.headers["x-request-id"] == "from-proxy"
    with serving.serve("middleware_stack:app", "--forwarded-allow-ips", "10.9.9.9",
                       env=env) as server:
        way = Way("lifted", server.host, server.port)
        # From an untrusted peer the header changes nothing.
        ignored = send(way, "GET", "/private/x", {"X-Forwarded-For": "198.51.100.7"})
        assert ignored.status == 403


@pytest.mark.timeout(60)
def test_middleware_settings_build_the_layers_without_code(static_root, tmp_path):
    (tmp_path / "front.py").write_text(
        "import json\n"
        "def app(environ, start_response):\n"
        "    body = json.dumps([environ['SCRIPT_NAME'], environ['PATH_INFO'],\n"
        "                       environ.get('HTTP_X_REQUEST_ID')]).encode()\n"
        "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
        "    return [body]\n"
        "def api(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [('api ' + environ['SCRIPT_NAME'] + ' ' + environ['PATH_INFO']).encode()]\n"
    )
    flags = [
        "--mount", "/api=front:api", "--static", f"/static={static_root}",
        "--rate-limit", "2/h,burst=2,key=header:X-Key", "--request-id", "--deny", "10.0.0.0/8",
    ]
    for native in ([], ["--no-native-middleware"]):
        with serving.serve("front:app", *flags, *native, cwd=tmp_path) as server:
            way = Way("cli", server.host, server.port)

            def fresh() -> dict[str, str]:
                return {"X-Key": uuid.uuid4().hex}  # a budget of its own

            assert send(way, "GET", "/api/x", fresh()).body == b"api /api /x"
            assert send(way, "GET", "/static/hello.txt", fresh()).body == HELLO
            answer = send(way, "GET", "/else", fresh())
            script, path, request_id = json.loads(answer.body)
            assert (script, path) == ("", "/else")
            assert request_id == answer.headers["x-request-id"]
            key = fresh()
            codes = [send(way, "GET", "/else", key).status for _ in range(3)]
            assert codes == [200, 200, 429], (native, codes)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mount", "api=front:api"], "is not PREFIX=TARGET"),
        (["--rate-limit", "100"], "100"),
        (["--rate-limit", "100/s,brust=3"], "brust=3"),
        (["--static", "/static=/no/such/dir"], "/no/such/dir"),
        (["--deny", "10.0.0.0/33"], "10.0.0.0/33"),
    ],
)
def test_a_bad_middleware_setting_is_refused_naming_it(flags, message, tmp_path):
    (tmp_path / "front.py").write_text("def app(e, s):\n    return []\n")
    code, log = serving.refused(["front:app", *flags], cwd=tmp_path)
    assert code in (2, 3), log
    assert message in log


def test_middleware_settings_from_a_config_file(static_root, tmp_path):
    (tmp_path / "front.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'front']\n"
    )
    (tmp_path / "ferrogate.toml").write_text(
        f'static = ["/static={static_root}"]\n'
        'deny = "127.0.0.2"\n'
        "request_id = true\n"
    )
    with serving.serve("front:app", cwd=tmp_path) as server:
        way = Way("toml", server.host, server.port)
        answer = send(way, "GET", "/static/hello.txt")
        assert answer.body == HELLO and answer.headers["x-request-id"]
        assert send(way, "GET", "/x").body == b"front"


@pytest.mark.timeout(60)
def test_a_deny_file_is_read_again_on_sighup(tmp_path):
    import signal

    (tmp_path / "front.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'front']\n"
    )
    deny = tmp_path / "deny.txt"
    deny.write_text("# nobody yet\n203.0.113.0/24\n")
    with serving.serve("front:app", "--deny-file", str(deny), cwd=tmp_path) as server:
        way = Way("file", server.host, server.port)
        assert send(way, "GET", "/").status == 200
        old = server.wait_for_workers(1)
        deny.write_text("203.0.113.0/24\n127.0.0.1  # this host now\n")
        server.send_signal(signal.SIGHUP)
        server.wait_for_workers(1, exclude=old, timeout=20)
        deadline = time.monotonic() + 10
        while send(way, "GET", "/").status != 403:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.05)


def test_a_bad_line_in_an_allow_file_names_the_file_and_line(tmp_path):
    (tmp_path / "front.py").write_text("def app(e, s):\n    return []\n")
    allow = tmp_path / "allow.txt"
    allow.write_text("10.0.0.0/8\nnot-an-address\n")
    server = serving.start(["front:app", "--allow-file", str(allow)],
                           binds=[f"127.0.0.1:{serving.free_port()}"], cwd=tmp_path,
                           wait_ready=False)
    code = server.wait(30)
    server.kill()
    assert code == 3, server.log()
    assert f"{allow}, line 2" in server.log()
