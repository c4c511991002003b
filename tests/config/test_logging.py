"""The error log (format, --error-log, --log-level) and the access log (combined format,
--access-log FILE or -, off by default)."""

from __future__ import annotations

import re

import pytest

from tests.serving import wait_for_text

LOG_PREFIX = (
    r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] "
    r"\[(\d+)\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] "
)
COMBINED_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"


def combined_line(
    request: str, status: int, size: str, referer: str = "-", agent: str = "-"
) -> str:
    """A regex for one Apache combined-format line from 127.0.0.1 without auth."""
    return (
        rf"^127\.0\.0\.1 - - {COMBINED_TIME} \"{re.escape(request)}\" {status} {size} "
        rf"\"{re.escape(referer)}\" \"{re.escape(agent)}\"$"
    )


def test_startup_lines_name_address_workers_threads_and_worker_pids(serve):
    with serve("basic:app", "--workers", "2", "--threads", "3") as server:
        workers = server.wait_for_workers(2)
        (listening,) = server.wait_for_log(
            rf"^{LOG_PREFIX}Listening at http://127\.0\.0\.1:{server.port} "
            r"\(workers: 2, threads: 3\)$"
        )
        assert listening.group(2) == "INFO"
        assert int(listening.group(1)) == server.pid
        for pid in workers:
            server.wait_for_log(rf"^{LOG_PREFIX}Booting worker with pid: {pid}$")


def test_every_error_log_line_has_the_standard_prefix(serve):
    with serve("failing:app") as server:
        server.get("/raise-before-headers")
        server.wait_for_log(r"RuntimeError: boom before headers")
        header_lines = [line for line in server.log().splitlines() if line.startswith("[")]
        assert header_lines
        for line in header_lines:
            assert re.match(LOG_PREFIX, line), line


def test_access_log_file_has_one_combined_line_per_request(serve, tmp_path):
    access = tmp_path / "access.log"
    with serve("basic:app", "--access-log", str(access)) as server:
        with server.connect() as conn:
            conn.send_request(
                "GET",
                "/?q=1",
                headers={"Referer": "http://ref.example/", "User-Agent": "pytest-agent/1"},
            )
            conn.read_response()
            conn.send_request("POST", "/echo", body=b"12345")
            conn.read_response()
            conn.send(b"GET /n/old HTTP/1.0\r\n\r\n")
            conn.read_response()
        wait_for_text(access.read_text, r"\n", count=3)
        lines = access.read_text().splitlines()
    assert len(lines) == 3, lines
    assert re.match(
        combined_line("GET /?q=1 HTTP/1.1", 200, "13", "http://ref.example/", "pytest-agent/1"),
        lines[0],
    ), lines[0]
    assert re.match(combined_line("POST /echo HTTP/1.1", 200, "5"), lines[1]), lines[1]
    assert re.match(combined_line("GET /n/old HTTP/1.0", 200, "3"), lines[2]), lines[2]


def test_access_log_dash_writes_to_stdout(serve):
    with serve("basic:app", "--access-log", "-") as server:
        server.get("/n/abc")
        wait_for_text(server.stdout, combined_line("GET /n/abc HTTP/1.1", 200, "3"))


def test_access_log_is_off_by_default(serve):
    with serve("basic:app") as server:
        server.get("/n/quiet-request")
        server.get("/n/quiet-request")
        assert "quiet-request" not in server.stdout()
        assert "quiet-request" not in server.log()


def test_error_log_file_gets_startup_lines_and_tracebacks(serve, tmp_path):
    error_log = tmp_path / "error.log"
    with serve("failing:app", "--error-log", str(error_log)) as server:
        assert server.get("/raise-before-headers").status == 500
        wait_for_text(error_log.read_text, r"Listening at http://")
        wait_for_text(error_log.read_text, r"RuntimeError: boom before headers 9d2e")
        assert "boom before headers" not in server.log()


def test_log_level_warning_hides_info_but_keeps_errors(serve):
    with serve("failing:app", "--log-level", "warning") as server:
        assert server.get("/raise-before-headers").status == 500
        server.wait_for_log(r"RuntimeError: boom before headers 9d2e")
        assert "[INFO]" not in server.log()
        assert "Listening at" not in server.log()


@pytest.mark.parametrize("level", ["debug", "info"])
def test_log_level_info_and_debug_show_info_lines(serve, level):
    with serve("basic:app", "--log-level", level) as server:
        server.wait_for_log(r"\[INFO\] Listening at http://")
