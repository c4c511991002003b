"""The HTTP/2 rows of the end-to-end benchmark (issue 13): h2c with prior knowledge driven by
h2load (Debian's nghttp2-client) instead of wrk, ferrogate (default `--http auto`) against
granian `--http 2`, the only peer that speaks HTTP/2. bench.py merges `scenarios()` into its
table; `Scenario.load == "h2load"` makes it run h2load and check with curl;
`"h2idle"` runs h2_idle.py (1,000 idle connections, for the peak RSS column).
"""

from __future__ import annotations

import os
import tempfile

import apps
from definitions import Scenario, expect_body

NAMES = ("h2hello", "h2post1m", "h2get1m", "h2idle1k")
PEERS = ("ferrogate", "granian")
#: h2load's multiplexing: 64 connections, 10 streams each in flight (the issue's figure).
H2LOAD_ARGS = ["-m", "10"]
GRANIAN = {"granian": ["--http", "2"]}


def _upload_file() -> str:
    """1 MiB for h2load -d (a file it sends as each request's body)."""
    path = os.path.join(tempfile.gettempdir(), "ferrogate-bench-1m.bin")
    if not os.path.exists(path) or os.path.getsize(path) != 1048576:
        with open(path, "wb") as fh:
            fh.write(b"a" * 1048576)
    return path


def scenarios() -> dict:
    file_bytes = bytes(range(256)) * (apps.FILE_SIZE // 256)
    items = [
        Scenario(
            "h2hello",
            "hello",
            "HTTP/2 hello (h2load -c64 -m10, h2c)",
            wrk_args=H2LOAD_ARGS,
            check=expect_body(apps.HELLO),
            servers=PEERS,
            server_args=GRANIAN,
            load="h2load",
        ),
        Scenario(
            "h2post1m",
            "post",
            "HTTP/2 POST 1 MiB, app reads wsgi.input",
            wrk_args=[*H2LOAD_ARGS, "-d", _upload_file()],
            method="POST",
            body=b"a" * 1048576,
            check=expect_body(b"1048576"),
            servers=PEERS,
            server_args=GRANIAN,
            load="h2load",
        ),
        Scenario(
            "h2get1m",
            "filewrapper",
            "HTTP/2 GET 1 MiB (wsgi.file_wrapper)",
            wrk_args=H2LOAD_ARGS,
            check=expect_body(file_bytes),
            servers=PEERS,
            server_args=GRANIAN,
            load="h2load",
        ),
        Scenario(
            "h2idle1k",
            "hello",
            "HTTP/2 1,000 idle h2c connections (one GET each, then held): peak RSS; "
            "req/s column = connections held per second of the run, not a rate",
            check=expect_body(apps.HELLO),
            servers=PEERS,
            # ferrogate closes a connection idle for --keep-alive (5 s by default); granian
            # keeps them: both hold all 1,000 for the whole run.
            server_args={**GRANIAN, "ferrogate": ["--keep-alive", "60"]},
            load="h2idle",
        ),
    ]
    return {s.name: s for s in items}
