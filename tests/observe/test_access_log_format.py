"""--access-log-format (gunicorn's atoms, or ``json``: one object per line) and
--log-slow-requests (a warning in the error log), checked on the lines a real server writes
(apps/queue_time.py)."""

from __future__ import annotations

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from tests.serving import wait_for_text


def test_gunicorn_atoms(serve):
    fmt = (
        '%(h)s %(u)s "%(r)s" %(s)s %(b)s %(m)s %(U)s %(q)s %(H)s %(p)s '
        "%({x-tenant}i)s %({content-type}o)s %(Q)s %(D)s"
    )
    with serve("queue_time:app", "--access-log", "-", "--access-log-format", fmt) as server:
        auth = "Basic " + base64.b64encode(b"alice:secret").decode()
        headers = {"X-Tenant": "acme", "Authorization": auth}
        assert server.get("/where?x=1", headers=headers).status == 200
        (match,) = wait_for_text(server.stdout, r"^127\.0\.0\.1 .*$")
        fields = match.group(0).split(" ")
        assert fields[:2] == ["127.0.0.1", "alice"]
        assert fields[2:5] == ['"GET', "/where?x=1", 'HTTP/1.1"']
        assert fields[5] == "200" and int(fields[6]) > 0
        assert fields[7:10] == ["GET", "/where", "x=1"]
        assert fields[10] == "HTTP/1.1"
        pid = int(fields[11].strip("<>"))
        assert pid in server.worker_pids()
        assert fields[12:14] == ["acme", "application/json"]
        assert 0 <= float(fields[14]) < 50  # queue time, ms
        assert int(fields[15]) > 0  # duration, µs


def test_json_lines_carry_every_field(serve):
    flags = ("--access-log", "-", "--access-log-format", "json", "--request-id")
    with serve("queue_time:app", "--threads", "1", *flags) as server:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(server.get, "/sleep?0.5")
            time.sleep(0.1)
            resp = server.get("/q?a=b", headers={"User-Agent": 'ua "x"', "Referer": "http://r/"})
            assert busy.result(timeout=10).status == 200
        matches = wait_for_text(server.stdout, r"^\{.*\}$", count=2)
        lines = [json.loads(m.group(0)) for m in matches]
        line = next(entry for entry in lines if entry["path"] == "/q")
        assert line["client"] == "127.0.0.1"
        assert (line["method"], line["query"], line["status"]) == ("GET", "a=b", 200)
        assert line["bytes"] == len(resp.body)
        assert line["request_id"] == resp.header("X-Request-ID")
        assert (line["user_agent"], line["referer"]) == ('ua "x"', "http://r/")
        assert line["listener"] == f"127.0.0.1:{server.port}"
        assert line["worker_pid"] in server.worker_pids()
        # It waited behind the sleeping request for the only thread.
        assert 250 < line["queue_ms"] <= line["duration_ms"] < 2000, line


def test_a_bad_format_is_refused_at_start_naming_the_atom(serve):
    from tests import serving

    server = serving.start(
        ["queue_time:app", "--access-log-format", "%(h)s %(zz)s"], wait_ready=False
    )
    assert server.wait(10) == 2
    assert "unknown atom %(zz)s" in server.log()


def test_slow_requests_are_logged_with_their_queue_time(serve):
    with serve("queue_time:app", "--log-slow-requests", "0.3") as server:
        assert server.get("/fast").status == 200
        assert server.get("/sleep?0.5").status == 200
        (match,) = wait_for_text(
            server.log, r"Slow request: GET /sleep\?0\.5 took (\S+)s \(queued (\S+)s\)"
        )
        assert 0.5 <= float(match.group(1)) < 2
        assert float(match.group(2)) < 0.1
        assert "/fast" not in server.log()
        # The access log stays off: slow requests alone do not open it.
        assert server.stdout() == ""


def test_gunicorn_config_file_access_log_format(serve, tmp_path):
    config = tmp_path / "gunicorn.conf.py"
    config.write_text('accesslog = "-"\naccess_log_format = "%(s)s %(U)s %(p)s"\n')
    with serve("queue_time:app", "-c", str(config)) as server:
        assert server.get("/from-config").status == 200
        wait_for_text(server.stdout, rf"^200 /from-config <{server.worker_pids()[0]}>$")
    assert os.path.exists(config)
