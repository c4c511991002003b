"""The observability rows of the end-to-end benchmark (issue 14): ferrogate's hello row with
one observability feature on, to read its cost against the plain `hello` row of the same run
(target: metrics cost under 2% of requests/s). ferrogate only; bench.py merges `scenarios()`
into its tables. Knows no wrk and no processes.

    BENCH_SCENARIOS=hello,hello_metrics,hello_shedding,hello_accesslog_json \\
    BENCH_SERVERS=ferrogate BENCH_RUNS=5 BENCH_NAME=observe bash benches/e2e/run.sh
"""

from __future__ import annotations

import os

import apps
from definitions import Scenario, expect_body


def _hello_with(name: str, title: str, flags: list, label: str) -> Scenario:
    return Scenario(
        name,
        "hello",
        title,
        check=expect_body(apps.HELLO),
        servers=("ferrogate",),
        server_args={"ferrogate": flags},
        labels={"ferrogate": label},
    )


def scenarios() -> dict:
    items = [
        # Port 0: each run's master binds a free port of its own for /metrics.
        _hello_with(
            "hello_metrics",
            "hello, keep-alive, with --metrics-bind (metrics on)",
            ["--metrics-bind", "127.0.0.1:0"],
            "--metrics-bind",
        ),
        # A limit that never sheds here: the cost of the estimate (a clock read per request).
        _hello_with(
            "hello_shedding",
            "hello, keep-alive, with --max-queue-time 10 (never reached)",
            ["--max-queue-time", "10"],
            "--max-queue-time",
        ),
        _hello_with(
            "hello_accesslog_json",
            "hello, keep-alive, with a json access log to /dev/null",
            ["--access-log", os.devnull, "--access-log-format", "json"],
            "json access log",
        ),
    ]
    return {s.name: s for s in items}
