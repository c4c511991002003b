#!/usr/bin/env python3
"""End-to-end HTTP benchmark: ferrogate against other WSGI servers, driven by wrk.

Run through ``bash benches/e2e/run.sh`` (which installs wrk and the peer servers),
or directly with the bench venv's python once that exists. Every knob has an
environment variable (shown in ``--help``) so ``make bench`` can be steered.

For each (server, scenario) pair and each run the driver:
  1. starts the server on a free port, pinned to one CPU (taskset), in its own
     process group, and waits until an HTTP request gets an answer;
  2. checks the scenario's response once (a server that answers wrongly is "n/a");
  3. warms up with wrk for BENCH_WARMUP seconds;
  4. snapshots utime+stime of the measured process(es), runs wrk (pinned to the
     other CPU), snapshots again and reads VmHWM;
  5. kills the whole process group.
Medians over the runs are reported. Measured processes: the worker (children of
the master) for ferrogate, gunicorn, uWSGI and nginx; the whole process tree for granian;
the single process for bjoern and waitress. Scenarios and servers are declared in
definitions.py; the ferrogate.middleware rows (and nginx) in middleware_scenarios.py; the
paste.deploy row (examples/openstack_style) in paste_scenarios.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(HERE, "results")
RAW = os.path.join(RESULTS, "raw")
BIN = os.path.dirname(os.path.abspath(sys.executable))
CLK_TCK = os.sysconf("SC_CLK_TCK")

sys.path.insert(0, HERE)
import apps  # noqa: E402  (the same module every server loads)
import h2_idle  # noqa: E402
import http2_scenarios  # noqa: E402
import middleware_scenarios  # noqa: E402
import observe_scenarios  # noqa: E402
import paste_scenarios  # noqa: E402
import proxy_scenarios  # noqa: E402
import tls_scenarios  # noqa: E402
from definitions import HOST, Scenario, Server, expect_body, expect_json  # noqa: E402

# ----------------------------------------------------------------------------- scenarios


def _scenarios() -> dict:
    lua = lambda name: ["-s", os.path.join(HERE, name)]  # noqa: E731
    file_bytes = bytes(range(256)) * (apps.FILE_SIZE // 256)
    items = [
        Scenario("hello", "hello", "hello world, keep-alive (13 B)", check=expect_body(apps.HELLO)),
        Scenario(
            "close",
            "hello",
            "hello world, Connection: close",
            wrk_args=["-H", "Connection: close"],
            headers={"Connection": "close"},
            check=expect_body(apps.HELLO),
        ),
        Scenario("body64k", "body64k", "64 KiB response body", check=expect_body(apps.BODY_64K)),
        Scenario(
            "stream",
            "stream",
            "streamed body, 100 x 1 KiB generator",
            check=expect_body(apps.CHUNK_1K * apps.STREAM_CHUNKS),
        ),
        Scenario(
            "post1k",
            "post",
            "POST 1 KiB, app reads wsgi.input",
            wrk_args=lua("post_1k.lua"),
            method="POST",
            body=b"a" * 1024,
            check=expect_body(b"1024"),
        ),
        Scenario(
            "post1m",
            "post",
            "POST 1 MiB, app reads wsgi.input",
            wrk_args=lua("post_1m.lua"),
            method="POST",
            body=b"a" * 1048576,
            check=expect_body(b"1048576"),
        ),
        Scenario(
            "environ",
            "environ_json",
            "reads 11 environ keys, small JSON",
            check=expect_json("REQUEST_METHOD", "GET"),
        ),
        Scenario("sleep10", "sleep10", "app sleeps 10 ms", check=expect_body(apps.HELLO)),
        Scenario(
            "filewrapper",
            "filewrapper",
            "wsgi.file_wrapper, 1 MiB file",
            check=expect_body(file_bytes),
        ),
        Scenario(
            "flask",
            "flask_apps:flask_json",
            "Flask jsonify",
            check=expect_json("message", "Hello, world!"),
        ),
    ]
    return {s.name: s for s in items}


SCENARIOS = {
    **_scenarios(),
    **middleware_scenarios.scenarios(),
    **paste_scenarios.scenarios(),
    **tls_scenarios.scenarios(),
    **proxy_scenarios.scenarios(),
    **observe_scenarios.scenarios(),
    **http2_scenarios.scenarios(),
}

# ----------------------------------------------------------------------------- servers


def _ferrogate_bin() -> str:
    return os.environ.get("FERROGATE", os.path.join(REPO, ".venv", "bin", "ferrogate"))


BJOERN_SNIPPET = (
    "import sys, importlib, bjoern; module, attr = sys.argv[1].split(':'); "
    "bjoern.run(getattr(importlib.import_module(module), attr), sys.argv[2], int(sys.argv[3]))"
)


def _servers() -> dict:
    vb = lambda exe: os.path.join(BIN, exe)  # noqa: E731
    items = [
        Server(
            "ferrogate",
            "ferrogate",
            "workers",
            lambda app, port: [_ferrogate_bin(), app, "--bind", f"{HOST}:{port}", "--workers", "1"],
            dist="ferrogate",
            python=os.path.join(os.path.dirname(_ferrogate_bin()), "python"),
        ),
        Server(
            "granian",
            "granian",
            "tree",
            lambda app, port: [
                vb("granian"),
                "--interface",
                "wsgi",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--no-access-log",
                "--log-level",
                "warning",
                app,
            ],
            dist="granian",
        ),
        Server(
            "granian-bt4",
            "granian --blocking-threads 4",
            "tree",
            lambda app, port: [
                vb("granian"),
                "--interface",
                "wsgi",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                "1",
                "--blocking-threads",
                "4",
                "--no-access-log",
                "--log-level",
                "warning",
                app,
            ],
            dist="granian",
        ),
        Server(
            "bjoern",
            "bjoern",
            "self",
            lambda app, port: [vb("python"), "-c", BJOERN_SNIPPET, app, HOST, str(port)],
            dist="bjoern",
        ),
        Server(
            "gunicorn",
            "gunicorn gthread x4",
            "workers",
            lambda app, port: [
                vb("gunicorn"),
                "-k",
                "gthread",
                "-w",
                "1",
                "--threads",
                "4",
                "-b",
                f"{HOST}:{port}",
                "--log-level",
                "warning",
                app,
            ],
            dist="gunicorn",
        ),
        Server(
            "uwsgi",
            "uWSGI 1p x4t",
            "workers",
            lambda app, port: [
                vb("uwsgi"),
                "--http11-socket",
                f"{HOST}:{port}",
                "--http-auto-chunked",
                "--master",
                "--processes",
                "1",
                "--threads",
                "4",
                "--module",
                app,
                "--pythonpath",
                HERE,
                "--need-app",
                "--die-on-term",
                "--disable-logging",
                "--ignore-sigpipe",
                "--ignore-write-errors",
                "--disable-write-exception",
                "--buffer-size",
                "32768",
            ],
            dist="uWSGI",
        ),
        Server(
            "waitress",
            "waitress x4",
            "self",
            lambda app, port: [vb("waitress-serve"), f"--listen={HOST}:{port}", "--threads=4", app],
            dist="waitress",
        ),
    ]
    return {s.name: s for s in items}


SERVERS = {
    **_servers(),
    **middleware_scenarios.servers(),
    **paste_scenarios.servers(),
    **proxy_scenarios.servers(),
}

# ----------------------------------------------------------------------------- /proc helpers


def _stat_fields(pid: int) -> Optional[list]:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            line = fh.read()
    except OSError:
        return None
    # Fields after "(comm)": rest[0] is field 3 (state), rest[1] ppid, rest[2] pgrp,
    # rest[11] utime (field 14), rest[12] stime (field 15).
    return line[line.rfind(")") + 2 :].split()


def _all_pids() -> list:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _children(pid: int) -> list:
    kids = set()
    try:  # the brief's way: /proc/<pid>/task/<tid>/children (all threads may fork)
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.update(int(x) for x in fh.read().split())
        return sorted(kids)
    except OSError:
        pass
    for p in _all_pids():  # fallback when CONFIG_PROC_CHILDREN is off
        f = _stat_fields(p)
        if f and int(f[1]) == pid:
            kids.add(p)
    return sorted(kids)


def _tree(pid: int) -> list:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _cpu_ticks(pids: list) -> dict:
    ticks = {}
    for p in pids:
        f = _stat_fields(p)
        if f:
            ticks[p] = int(f[11]) + int(f[12])
    return ticks


def _vm_hwm_kib(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _group_alive(pgid: int) -> bool:
    for p in _all_pids():
        f = _stat_fields(p)
        if f and int(f[2]) == pgid and f[0] != "Z":
            return True
    return False


# ----------------------------------------------------------------------------- process control


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _http(port: int, sc: Scenario, timeout: float = 10.0) -> tuple:
    """One request as the scenario sends it; returns (status, headers, body)."""
    if sc.tls:
        # What is measured is the server's TLS, not a client's verification of a test cert.
        context = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        headers = dict(sc.headers)
        if sc.method == "POST":
            headers.setdefault("Content-Type", "application/octet-stream")
        conn.request(
            sc.method, sc.path, body=sc.body if sc.method == "POST" else None, headers=headers
        )
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def _framing_error(headers) -> Optional[str]:
    """A keep-alive HTTP/1.1 response must say where its body ends."""
    if headers.get("Content-Length") is not None:
        return None
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return None
    if "close" in (headers.get("Connection") or "").lower():
        return None
    return (
        "response body not delimited (no Content-Length, not chunked, no Connection: close) "
        "on a keep-alive connection"
    )


def _closes_connection(port: int, timeout: float, tls: bool = False) -> Optional[str]:
    """Send one request with Connection: close; the server must close the socket after it."""
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        s = ssl._create_unverified_context().wrap_socket(raw) if tls else raw
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            return (
                f"ignores Connection: close (socket still open {timeout:g}s after the response, "
                "so wrk would keep reusing it)"
            )
        except ConnectionResetError:
            pass
    return None


class ServerProcess:
    def __init__(self, server: Server, sc: Scenario, port: int, cpu: str, log_path: str):
        self.server, self.port = server, port
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
        env["PYTHONPATH"] = HERE + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = log_path
        self.log = open(log_path, "wb")
        argv = server.argv(sc.app_for(server.name), port)
        argv[1:1] = sc.server_args.get(server.name, [])  # flags go right after the executable
        self.argv = ["taskset", "-c", cpu] + argv
        self.proc = subprocess.Popen(
            self.argv,
            cwd=HERE,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pgid = self.proc.pid

    def tail(self, n: int = 400) -> str:
        self.log.flush()
        try:
            with open(self.log_path, "rb") as fh:
                data = fh.read()[-n:]
        except OSError:
            return ""
        return " ".join(data.decode("utf-8", "replace").split())

    def exited(self) -> Optional[str]:
        rc = self.proc.poll()
        if rc is None:
            return None
        return f"exited with code {rc}: {self.tail() or '(no output)'}"

    def wait_ready(self, sc: Scenario, timeout: float) -> Optional[str]:
        """Wait until the port accepts *and* an HTTP request is answered; error or None."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        probe = Scenario("probe", sc.app, "", check=None, tls=sc.tls, load=sc.load)
        ask = _http2 if sc.load in ("h2load", "h2idle") else _http
        while time.monotonic() < deadline:
            err = self.exited()
            if err:
                return f"failed to start: {err}"
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass
                ask(self.port, probe, timeout=5)  # answered: the worker is up
                return None
            except (OSError, http.client.HTTPException) as exc:
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
        return f"not ready after {timeout:.0f}s ({last}); log: {self.tail()}"

    def measured_pids(self) -> tuple:
        mode = self.server.measure
        if mode == "tree":
            return _tree(self.proc.pid), ""
        if mode == "workers":
            kids = _children(self.proc.pid)
            if kids:
                return kids, ""
            return [self.proc.pid], "no worker child found; measured the master"
        return [self.proc.pid], ""

    def stop(self) -> None:
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not _group_alive(self.pgid):
                    break
                time.sleep(0.05)
            else:
                continue
            break
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.log.close()


# ----------------------------------------------------------------------------- wrk


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def run_wrk(cfg, sc: Scenario, port: int, duration: float, out_path: Optional[str]) -> dict:
    if sc.load == "h2load":
        return run_h2load(cfg, sc, port, duration, out_path)
    if sc.load == "h2idle":
        return h2_idle.run(HOST, port, duration)
    argv = [
        "taskset",
        "-c",
        cfg.wrk_cpu,
        "wrk",
        "-t",
        str(cfg.threads),
        "-c",
        str(cfg.connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        f"{max(1, round(cfg.timeout))}s",
        "--latency",
        *sc.wrk_args,
        f"{'https' if sc.tls else 'http'}://{HOST}:{port}{sc.path}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    text = proc.stdout + proc.stderr
    if out_path:
        with open(out_path, "w") as fh:
            fh.write(" ".join(argv) + "\n\n" + text)
    return parse_wrk(text, proc.returncode)


def parse_wrk(text: str, rc: int = 0) -> dict:
    res: dict = {"ok": False}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+),", text)
    r = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p = re.search(r"^\s*99(?:\.000)?%\s+([\d.]+)(us|ms|s|m)\b", text, re.M)
    if not (m and r):
        res["error"] = f"wrk failed (rc={rc}): {' '.join(text.split())[:300]}"
        return res
    res.update(ok=True, requests=int(m.group(1)), rps=float(r.group(1)))
    res["p99_ms"] = float(p.group(1)) * _UNITS[p.group(2)] if p else None
    s = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    res["socket_errors"] = sum(int(x) for x in s.groups()) if s else 0
    res["socket_detail"] = (
        dict(zip(("connect", "read", "write", "timeout"), map(int, s.groups()))) if s else {}
    )
    res["non2xx"] = int(n.group(1)) if n else 0
    return res


def run_h2load(cfg, sc: Scenario, port: int, duration: float, out_path: Optional[str]) -> dict:
    """The HTTP/2 rows (http2_scenarios.py): h2load with prior knowledge, as many connections
    as wrk would open, for `duration` seconds; its figures in run_wrk's shape (no p99)."""
    argv = [
        "taskset",
        "-c",
        cfg.wrk_cpu,
        "h2load",
        "-t",
        str(cfg.threads),
        "-c",
        str(cfg.connections),
        "-D",
        str(max(1, round(duration))),
        *sc.wrk_args,
        f"http://{HOST}:{port}{sc.path}",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    text = proc.stdout + proc.stderr
    if out_path:
        with open(out_path, "w") as fh:
            fh.write(" ".join(argv) + "\n\n" + text)
    return parse_h2load(text, proc.returncode)


def parse_h2load(text: str, rc: int = 0) -> dict:
    res: dict = {"ok": False}
    r = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    m = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    c = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (r and m and c):
        res["error"] = f"h2load failed (rc={rc}): {' '.join(text.split())[:300]}"
        return res
    done, _, failed, errored, timeout = map(int, m.groups())
    res.update(ok=True, requests=done, rps=float(r.group(1)), p99_ms=None)
    res["socket_errors"] = errored + timeout
    res["socket_detail"] = {"failed": failed, "errored": errored, "timeout": timeout}
    res["non2xx"] = sum(int(x) for x in c.groups()[1:])
    return res


def _http2(port: int, sc: Scenario, timeout: float = 10.0) -> tuple:
    """The check request of an HTTP/2 row, through curl --http2-prior-knowledge."""
    with tempfile.NamedTemporaryFile() as body_file:
        argv = [
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            body_file.name,
            "-w",
            "%{http_code} %{http_version}",
            "-m",
            str(timeout),
        ]
        if sc.method == "POST":
            argv += ["--data-binary", "@-", "-H", "Content-Type: application/octet-stream"]
        argv.append(f"http://{HOST}:{port}{sc.path}")
        done = subprocess.run(argv, input=sc.body, capture_output=True, timeout=timeout + 5)
        if done.returncode != 0:
            raise OSError(f"curl: {done.stderr.decode(errors='replace').strip()}")
        status, version = done.stdout.decode().split()
        if version != "2":
            raise OSError(f"curl got HTTP/{version}, not HTTP/2")
        return int(status), {"Content-Length": "h2"}, open(body_file.name, "rb").read()


# ----------------------------------------------------------------------------- one measurement


def measure_once(cfg, server: Server, sc: Scenario, run: int) -> dict:
    """One run of one (server, scenario); returns a dict with ok/reason or the figures."""
    port = free_port()
    stem = os.path.join(cfg.raw_dir, f"{server.name}__{sc.name}__run{run}")
    sp = ServerProcess(server, sc, port, cfg.server_cpu, stem + ".server.log")
    try:
        err = sp.wait_ready(sc, cfg.start_timeout)
        if err:
            return {"ok": False, "reason": err, "fatal": True}
        try:
            check = _http2 if sc.load in ("h2load", "h2idle") else _http
            status, headers, body = check(sp.port, sc, timeout=cfg.check_timeout)
        except socket.timeout:
            return {
                "ok": False,
                "fatal": True,
                "reason": (
                    f"check request timed out after {cfg.check_timeout:g}s (response body not "
                    "delimited: no Content-Length/chunked and the connection kept open?)"
                ),
            }
        except (OSError, http.client.HTTPException) as exc:
            return {
                "ok": False,
                "reason": f"check request failed: {type(exc).__name__}: {exc}",
                "fatal": True,
            }
        bad = sc.check(status, body) or (
            None if sc.headers.get("Connection") else _framing_error(headers)
        )
        if not bad and sc.headers.get("Connection") == "close":
            bad = _closes_connection(sp.port, 2.0, sc.tls)
        if bad:
            return {"ok": False, "reason": f"check failed: {bad}", "fatal": True}
        if cfg.warmup > 0 and sc.load != "h2idle":  # idle connections need no warm-up
            warm = run_wrk(cfg, sc, port, cfg.warmup, stem + ".warmup.txt")
            if not warm["ok"]:
                return {"ok": False, "reason": f"warm-up: {warm['error']}"}
        err = sp.exited()
        if err:
            return {"ok": False, "reason": f"server died during warm-up: {err}"}
        pids, note = sp.measured_pids()
        before = _cpu_ticks(pids)
        res = run_wrk(cfg, sc, port, cfg.duration, stem + ".wrk.txt")
        after = _cpu_ticks(pids)
        hwm = [_vm_hwm_kib(p) for p in pids]
        died = sp.exited()
        if not res["ok"]:
            return {"ok": False, "reason": res["error"] + (f"; server {died}" if died else "")}
        if not res["requests"]:
            return {
                "ok": False,
                "reason": "wrk completed no request" + (f"; server {died}" if died else ""),
            }
        if died:
            return {"ok": False, "reason": f"server died during the run: {died}"}
        lost = [p for p in pids if p not in after]
        if lost:
            note = (note + "; " if note else "") + f"measured pid(s) {lost} vanished mid-run"
        ticks = sum(after.get(p, before[p]) - before[p] for p in before)
        res["cpu_s"] = ticks / CLK_TCK
        res["cpu_us_per_req"] = ticks * 1e6 / CLK_TCK / res["requests"] if res["requests"] else None
        res["rss_mib"] = sum(h for h in hwm if h) / 1024 if any(hwm) else None
        res["pids"] = pids
        res["wrong_status"] = sc.wrong_responses(res)
        res["note"] = note
        return res
    finally:
        sp.stop()


def _median(values: list) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def bench_pair(cfg, server: Server, sc: Scenario) -> dict:
    missing = server.missing()
    if missing:
        return {"ok": False, "reason": missing}
    runs, failures = [], []
    for i in range(1, cfg.runs + 1):
        try:
            r = measure_once(cfg, server, sc, i)
        except Exception as exc:  # never abort the whole benchmark on one pair
            r = {"ok": False, "reason": f"driver error: {type(exc).__name__}: {exc}"}
        if r["ok"]:
            runs.append(r)
        else:
            failures.append(r["reason"])
            if r.get("fatal"):
                break
    if not runs:
        return {"ok": False, "reason": failures[0] if failures else "no run", "runs": []}
    notes = sorted({r["note"] for r in runs if r.get("note")})
    if failures:
        notes.append(f"{len(failures)}/{cfg.runs} runs failed: {failures[0]}")
    return {
        "ok": True,
        "rps": _median([r["rps"] for r in runs]),
        "p99_ms": _median([r["p99_ms"] for r in runs]),
        "rss_mib": _median([r["rss_mib"] for r in runs]),
        "cpu_us_per_req": _median([r["cpu_us_per_req"] for r in runs]),
        "requests": sum(r["requests"] for r in runs),
        "socket_errors": sum(r["socket_errors"] for r in runs),
        "non2xx": sum(r["non2xx"] for r in runs),
        "wrong_status": sum(r["wrong_status"] for r in runs),
        "errors": sum(r["socket_errors"] + r["wrong_status"] for r in runs),
        "runs_ok": len(runs),
        "note": "; ".join(notes),
        "runs": [{k: v for k, v in r.items() if k != "ok"} for r in runs],
    }


# ----------------------------------------------------------------------------- reporting


def _fmt(v, spec: str, na: str = "-") -> str:
    return na if v is None else format(v, spec)


def _ratio(res: dict, base: Optional[dict]) -> str:
    if not (res.get("ok") and base and base.get("ok") and base.get("rps")):
        return "-"
    return f"{res['rps'] / base['rps']:.2f}x"


def _rows(cfg, results: dict, scn: str) -> list:
    base = results[scn].get("ferrogate")
    rows = []
    for name in cfg.servers:
        res = results[scn].get(name)
        if res is None:
            continue
        label = SCENARIOS[scn].label_for(SERVERS[name])
        if not res["ok"]:
            rows.append((label, "n/a", "", "", "", "", "", res["reason"]))
            continue
        flag = " !" if res["errors"] else ""
        rows.append(
            (
                label + flag,
                _fmt(res["rps"], ",.0f"),
                _ratio(res, base),
                _fmt(res["p99_ms"], ".2f"),
                _fmt(res["rss_mib"], ".1f"),
                _fmt(res["cpu_us_per_req"], ".1f"),
                str(res["errors"]),
                res.get("note", ""),
            )
        )
    return rows


HEAD = ("server", "req/s", "vs ferrogate", "p99 ms", "peak RSS MiB", "CPU us/req", "errors", "note")


def print_table(cfg, results: dict, scn: str) -> None:
    rows = _rows(cfg, results, scn)
    cols = HEAD[:-1]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print(f"\n== {scn}: {SCENARIOS[scn].title}")
    print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cols, widths))))
    for r in rows:
        if r[1] == "n/a":
            print(r[0].ljust(widths[0]) + "  n/a: " + r[7][:160])
            continue
        line = "  ".join(
            v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(r[:-1], widths))
        )
        print(line + (f"  ({r[7][:120]})" if r[7] else ""))
    sys.stdout.flush()


def _versions(cfg) -> dict:
    out = {}
    for name in cfg.servers:
        s = SERVERS[name]
        try:
            if s.version_argv:
                done = subprocess.run(s.version_argv, capture_output=True, text=True, timeout=30)
                out[name] = (done.stdout + done.stderr).strip().rsplit("/", 1)[-1] or "?"
            elif s.python == sys.executable:
                out[name] = importlib.metadata.version(s.dist)
            else:
                out[name] = (
                    subprocess.run(
                        [
                            s.python,
                            "-c",
                            f"import importlib.metadata as m; print(m.version({s.dist!r}))",
                        ],
                        capture_output=True,
                        text=True,
                        timeout=30,
                    ).stdout.strip()
                    or "?"
                )
        except Exception:
            out[name] = "?"
    return out


def _machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return "?"


def _git_rev() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "src", "python"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except Exception:
        return "?"


def write_markdown(cfg, results: dict, meta: dict, path: str) -> None:
    L = []
    L.append("# ferrogate end-to-end benchmark\n")
    L.append(f"- date: {meta['date']}, repo commit: `{meta['commit']}`")
    L.append(
        f"- machine: {meta['machine']}; load average at start {meta['load_start']}, "
        f"at end {meta.get('load_end', '?')} (anything else running skews the figures)"
    )
    L.append(
        f"- load: `wrk -t{cfg.threads} -c{cfg.connections} -d{cfg.duration:g}s --latency "
        f"--timeout {cfg.timeout:g}s` pinned to CPU {cfg.wrk_cpu}; server pinned to CPU "
        f"{cfg.server_cpu}; {cfg.warmup:g}s warm-up; median of {cfg.runs} run(s), "
        "a fresh server per run" + (" (BENCH_QUICK)" if cfg.quick else "")
    )
    L.append("- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    L.append(
        "- columns: req/s and p99 from wrk; *vs ferrogate* = req/s ÷ ferrogate's req/s; "
        "peak RSS = VmHWM of the measured process(es); CPU µs/req = (utime+stime over the "
        "measured run) ÷ requests completed; errors = wrk socket errors + non-2xx/3xx, "
        "summed over runs (rows with errors are flagged ⚠)."
    )
    L.append(
        "- measured process: the worker for ferrogate, gunicorn, uWSGI and nginx (1 worker, "
        "master excluded); the whole tree for granian; the single process for bjoern and waitress."
    )
    L.append(
        "- servers: ferrogate defaults; granian `--interface wsgi` (default blocking threads, and "
        "`--blocking-threads 4`); bjoern `bjoern.run`; gunicorn `-k gthread -w 1 --threads 4`; "
        "uWSGI `--http11-socket --http-auto-chunked --master --processes 1 --threads 4` "
        "(the keep-alive "
        "flavour of http-socket; plain `--http-socket` closes after every response); "
        "waitress `--threads=4`.\n"
    )
    for scn in cfg.scenarios:
        if scn not in results:
            continue
        sc = SCENARIOS[scn]
        L.append(f"## {scn}: {sc.title}\n")
        L.append("| server | req/s | vs ferrogate | p99 ms | peak RSS MiB | CPU µs/req | errors |")
        L.append("|---|--:|--:|--:|--:|--:|--:|")
        notes = []
        for r in _rows(cfg, results, scn):
            label = r[0].replace(" !", " ⚠")
            if r[1] == "n/a":
                L.append(f"| {label} | n/a | | | | | |")
                notes.append(f"{label}: n/a, {r[7]}")
                continue
            L.append(f"| {label} | " + " | ".join(r[1:7]) + " |")
            if r[7]:
                notes.append(f"{r[0].rstrip(' !')}: {r[7]}")
        L.append("")
        for n in notes:
            L.append(f"- {n.replace('|', '/')}")
        if notes:
            L.append("")
    # Summary matrix: req/s, servers side by side.
    L.append("## Summary: requests/s\n")
    L.append("| scenario | " + " | ".join(SERVERS[s].label for s in cfg.servers) + " |")
    L.append("|---|" + "--:|" * len(cfg.servers))
    for scn in cfg.scenarios:
        if scn not in results:
            continue
        cells = []
        for s in cfg.servers:
            res = results[scn].get(s)
            cells.append(
                _fmt(res["rps"], ",.0f") + (" ⚠" if res["errors"] else "")
                if res and res["ok"]
                else ("n/a" if res else "")
            )
        L.append(f"| {scn} | " + " | ".join(cells) + " |")
    L.append("")
    with open(path, "w") as fh:
        fh.write("\n".join(L))


def write_chart(cfg, results: dict, meta: dict, path: str) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as exc:
        return f"matplotlib unavailable: {exc}"
    scns = [s for s in cfg.scenarios if s in results]
    servers = cfg.servers
    ncols = min(len(scns), 5) or 1
    nrows = (len(scns) + ncols - 1) // ncols or 1
    cmap = plt.get_cmap("tab10")
    colors = {
        s: ("#d62728" if s == "ferrogate" else cmap([0, 1, 2, 4, 5, 6, 7, 8, 9][i % 9]))
        for i, s in enumerate(servers)
    }
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(7.5, 3.4 * ncols), 3.2 * nrows + 1.0), squeeze=False
    )
    for ax in axes.flat[len(scns) :]:
        ax.axis("off")
    for ax, scn in zip(axes.flat, scns):
        servers = [s for s in cfg.servers if s in results[scn]]
        vals = []
        for s in servers:
            res = results[scn].get(s)
            vals.append(res["rps"] if res and res["ok"] else 0.0)
        x = range(len(servers))
        bars = ax.bar(x, vals, color=[colors[s] for s in servers])
        top = max(vals) if any(vals) else 1.0
        for b, v, s in zip(bars, vals, servers):
            res = results[scn].get(s)
            txt = (
                "n/a"
                if not (res and res["ok"])
                else (f"{v / 1000:.1f}k" if v >= 1000 else f"{v:.0f}")
            )
            if res and res["ok"] and res["errors"]:
                txt += "!"
            ax.text(
                b.get_x() + b.get_width() / 2,
                v + top * 0.01,
                txt,
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_title(f"{scn}: {SCENARIOS[scn].title}", fontsize=8)
        ax.set_xticks(list(x))
        ax.set_xticklabels(servers, rotation=45, ha="right", fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylim(0, top * 1.15)
        ax.grid(axis="y", alpha=0.3)
    axes.flat[0].set_ylabel("requests/s")
    fig.suptitle(
        f"ferrogate e2e: requests/s by scenario and server ({meta['date']}, {meta['commit']})\n"
        f"wrk -t{cfg.threads} -c{cfg.connections} -d{cfg.duration:g}s, "
        f"median of {cfg.runs} run(s), "
        f"server: 1 worker on 1 CPU; ! = wrk errors",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# ----------------------------------------------------------------------------- main


def _env_list(name: str) -> Optional[list]:
    v = os.environ.get(name, "").strip()
    return [x.strip() for x in v.split(",") if x.strip()] or None


def parse_args(argv=None):
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false", "no")
    env = os.environ.get
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        default=quick,
        help="BENCH_QUICK=1: hello+close, ferrogate/granian/gunicorn, 1 run of 5 s",
    )
    ap.add_argument("--servers", default=None, help=f"BENCH_SERVERS, from: {','.join(SERVERS)}")
    ap.add_argument(
        "--scenarios", default=None, help=f"BENCH_SCENARIOS, from: {','.join(SCENARIOS)}"
    )
    ap.add_argument("--duration", type=float, default=None, help="BENCH_DURATION seconds (10)")
    ap.add_argument("--runs", type=int, default=None, help="BENCH_RUNS (3)")
    # Options whose default comes from a BENCH_* variable: (flag, variable, type, default, help).
    for flag, var, kind, default, text in (
        ("--connections", "BENCH_CONNECTIONS", int, "64", "wrk -c"),
        ("--threads", "BENCH_THREADS", int, "1", "wrk -t"),
        ("--warmup", "BENCH_WARMUP", float, "1", "seconds"),
        ("--timeout", "BENCH_TIMEOUT", float, "5", "wrk --timeout seconds"),
        ("--start-timeout", "BENCH_START_TIMEOUT", float, "30", "seconds"),
        ("--check-timeout", "BENCH_CHECK_TIMEOUT", float, "10", "seconds for the response check"),
        ("--server-cpu", "BENCH_SERVER_CPU", str, "0", "taskset list"),
        ("--wrk-cpu", "BENCH_WRK_CPU", str, "1", "taskset list"),
        ("--out", "BENCH_OUT", str, RESULTS, "directory for the results"),
        ("--name", "BENCH_NAME", str, "latest", "results file stem: <out>/<name>.md/.json/.png"),
    ):
        ap.add_argument(
            flag, type=kind, default=kind(env(var, default)), help=f"{var}, {text} ({default})"
        )
    cfg = ap.parse_args(argv)

    servers = (cfg.servers.split(",") if cfg.servers else None) or _env_list("BENCH_SERVERS")
    scenarios = (cfg.scenarios.split(",") if cfg.scenarios else None) or _env_list(
        "BENCH_SCENARIOS"
    )
    if cfg.quick:
        servers = servers or ["ferrogate", "granian", "gunicorn"]
        scenarios = scenarios or ["hello", "close"]
    cfg.servers = [s.strip() for s in (servers or list(SERVERS)) if s.strip()]
    cfg.scenarios = [s.strip() for s in (scenarios or list(SCENARIOS)) if s.strip()]
    for kind, names, known in (
        ("server", cfg.servers, SERVERS),
        ("scenario", cfg.scenarios, SCENARIOS),
    ):
        bad = [n for n in names if n not in known]
        if bad:
            ap.error(f"unknown {kind}(s) {bad}; known: {','.join(known)}")
    dflt_d, dflt_r = ("5", "1") if cfg.quick else ("10", "3")
    cfg.duration = (
        cfg.duration if cfg.duration is not None else float(env("BENCH_DURATION", dflt_d))
    )
    cfg.runs = cfg.runs if cfg.runs is not None else int(env("BENCH_RUNS", dflt_r))
    return cfg


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _run_pairs(cfg, pairs: list, results: dict, meta: dict) -> None:
    for scn in cfg.scenarios:
        for name in (n for c, n in pairs if c == scn):
            print(f"  {scn:<12} {name:<12} ...", end="", flush=True)
            t0 = time.monotonic()
            res = bench_pair(cfg, SERVERS[name], SCENARIOS[scn])
            results[scn][name] = res
            summary = (
                f"{res['rps']:,.0f} req/s"
                + (f", {res['errors']} errors" if res["errors"] else "")
                if res["ok"]
                else f"n/a ({res['reason'][:100]})"
            )
            print(f" {summary}  [{time.monotonic() - t0:.0f}s]", flush=True)
        print_table(cfg, results, scn)
        with open(os.path.join(cfg.raw_dir, "results.json"), "w") as fh:
            json.dump({"meta": meta, "results": results}, fh, indent=1)


def main(argv=None) -> int:
    cfg = parse_args(argv)
    # Ctrl-C or SIGTERM: stop the current server group, write what was measured, exit.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    for tool in ("wrk", "taskset", "h2load", "curl"):
        if not shutil.which(tool):
            print(
                f"error: {tool} not found (run benches/e2e/run.sh, which installs it)",
                file=sys.stderr,
            )
            return 2
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    cfg.raw_dir = os.path.join(RAW, stamp)
    os.makedirs(cfg.raw_dir, exist_ok=True)
    os.makedirs(cfg.out, exist_ok=True)
    data_file = os.environ.setdefault("BENCH_DATA_FILE", os.path.join(RAW, "blob-1m.bin"))
    apps.ensure_data_file(data_file)

    meta = {
        "date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": _git_rev(),
        "machine": _machine(),
        "versions": _versions(cfg),
        "load_start": _loadavg(),
    }
    if float(meta["load_start"].split()[0] if meta["load_start"] != "?" else 0) > 0.5:
        print(
            f"warning: load average is {meta['load_start']}: other work on this machine will "
            "skew the figures",
            file=sys.stderr,
        )
    pairs = [(c, n) for c in cfg.scenarios for n in cfg.servers if SCENARIOS[c].runs_on(SERVERS[n])]
    est = len(pairs) * cfg.runs * (cfg.duration + cfg.warmup + 2)
    print(
        f"ferrogate e2e bench: {len(pairs)} (scenario, server) pairs x "
        f"{cfg.runs} run(s) of {cfg.duration:g}s (~{est / 60:.0f} min); raw logs in {cfg.raw_dir}"
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))
    sys.stdout.flush()

    results: dict = {scn: {} for scn in cfg.scenarios}
    # The proxy rows' one upstream, up for the whole run when any of them is selected.
    upstream_note = ""
    upstream: contextlib.AbstractContextManager = contextlib.nullcontext()
    if any(scn in proxy_scenarios.NAMES for scn in cfg.scenarios):
        cpu, upstream_note = proxy_scenarios.upstream_cpu(cfg.server_cpu)
        log = os.path.join(cfg.raw_dir, "proxy-upstream.log")
        upstream = proxy_scenarios.upstream(_ferrogate_bin(), cpu, log)
    try:
        with upstream:
            _run_pairs(cfg, pairs, results, meta)
    except KeyboardInterrupt:
        # A partial run must not replace the committed results/latest.*: report into raw/.
        print(f"\ninterrupted; writing what was measured to {cfg.raw_dir}", file=sys.stderr)
        cfg.out = cfg.raw_dir
        results = {k: v for k, v in results.items() if len(v) == sum(c == k for c, _ in pairs)}
        cfg.scenarios = [s for s in cfg.scenarios if s in results]
        if not results:
            return 130
    signal.signal(signal.SIGINT, signal.SIG_DFL)

    if len(cfg.scenarios) > 1:
        print("\n== summary: requests/s")
        w = max(len(s) for s in cfg.servers)
        print(" " * 12 + "".join(f"{s:>{max(w, 10) + 2}}" for s in cfg.servers))
        for scn in cfg.scenarios:
            cells = []
            for s in cfg.servers:
                r = results[scn].get(s, {"ok": False})
                cells.append(
                    f"{r['rps']:,.0f}" + ("!" if r["errors"] else "") if r["ok"] else "n/a"
                )
            print(f"{scn:<12}" + "".join(f"{c:>{max(w, 10) + 2}}" for c in cells))

    meta["load_end"] = _loadavg()
    config = {
        k: getattr(cfg, k)
        for k in (
            "servers",
            "scenarios",
            "duration",
            "runs",
            "connections",
            "threads",
            "warmup",
            "timeout",
            "server_cpu",
            "wrk_cpu",
            "quick",
        )
    }
    md, png = (os.path.join(cfg.out, f"{cfg.name}.{ext}") for ext in ("md", "png"))
    write_markdown(cfg, results, meta, md)
    targets = (
        middleware_scenarios.targets(results)
        + (tls_scenarios.targets(results) or "")
        + proxy_scenarios.targets(results, upstream_note)
    )
    if targets:
        print("\n" + targets)
        with open(md, "a") as fh:
            fh.write(targets)
    with open(os.path.join(cfg.out, f"{cfg.name}.json"), "w") as fh:
        json.dump({"meta": meta, "config": config, "results": results}, fh, indent=1)
    err = write_chart(cfg, results, meta, png)
    print(f"\nwrote {md}" + (f"\nchart skipped: {err}" if err else f"\nwrote {png}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
