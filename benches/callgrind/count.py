"""Instructions per request through the real server, counted by valgrind's callgrind.

Runs ``ferrogate`` (one worker) under callgrind twice, sending N/2 and then N sequential
keep-alive requests; the difference in the worker's instruction count, divided by N/2, is the
cost of one request with startup and shutdown cancelled out. Instruction counts do not depend
on what else the machine is doing, so a hot-path change shows a before/after figure that
wall-clock benchmarks on this noisy 2-core machine cannot.

    .venv/bin/python benches/callgrind/count.py [--requests 2000] [--app hello]
"""

from __future__ import annotations

import argparse
import glob
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The same apps the end-to-end benchmark serves.
APPS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "e2e")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"server did not listen on {port} within {timeout}s")


def send(port: int, count: int, path: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        conn.request("GET", path, headers={"User-Agent": "callgrind"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"unexpected status {response.status}")
    conn.close()


def worker_instructions(outdir: str, master_pid: int) -> int:
    """The total Ir of the worker (the traced process that is not the master)."""
    totals = []
    for path in glob.glob(os.path.join(outdir, "cg.*.out")):
        pid = int(path.rsplit(".", 2)[-2])
        if pid == master_pid:
            continue
        with open(path) as f:
            text = f.read()
        match = re.search(r"^(?:totals|summary): (\d+)", text, re.M)
        if match:
            totals.append(int(match.group(1)))
    if len(totals) != 1:
        raise SystemExit(f"expected one worker profile in {outdir}, found {len(totals)}")
    return totals[0]


def measure(app: str, count: int, path: str, extra: list[str], only: list[str] = ()) -> int:
    port = free_port()
    with tempfile.TemporaryDirectory() as outdir:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={outdir}/cg.%p.out",
            *(f"--toggle-collect={pattern}" for pattern in only),
            sys.executable,
            "-m",
            "ferrogate",
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--log-level",
            "error",
            *extra,
        ]
        server = subprocess.Popen(command, cwd=APPS_DIR, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
            send(port, count, path)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
        return worker_instructions(outdir, server.pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--app", default="apps:hello")
    parser.add_argument("--path", default="/")
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        help="one more ferrogate argument (repeat; e.g. --server-arg=--metrics-bind=127.0.0.1:0)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="count only inside functions matching this callgrind pattern (repeat), e.g. "
        "'*Pipeline*Handler*call*': leaves out the event loop, whose turns per request vary "
        "with timing by a few hundred instructions from run to run",
    )
    args = parser.parse_args()
    print(f"{args.app} {args.path}: " + per_request(args.app, args.requests, args.path,
                                                   args.server_arg, "request", args.only))


def per_request(
    app: str, requests: int, path: str, extra: list[str], what: str, only: list[str] = ()
) -> str:
    """Measures ``requests``/2 then ``requests`` requests; the difference per request, said."""
    half = requests // 2
    small = measure(app, half, path, extra, only)
    large = measure(app, requests, path, extra, only)
    cost = (large - small) / (requests - half)
    return (
        f"{cost:,.0f} instructions per {what} "
        f"(worker totals {small:,} for {half}, {large:,} for {requests})"
    )


if __name__ == "__main__":
    main()
