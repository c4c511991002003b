"""Runs ``python -m ferrogate`` as a real process and lets a test look at it from outside.

A test gets a :class:`Server`: its address, its error log (stderr, captured to a file), its
stdout (where ``--access-log -`` writes), its worker pids (from ``/proc``), and ``stop()``.
``serve()`` is the context manager the fixtures use: it waits until the first bind accepts
connections and, at the end, stops the server with SIGTERM and asserts that it exits 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.rawhttp import RawConnection, Response

TESTS_DIR = Path(__file__).resolve().parent
APPS_DIR = TESTS_DIR / "apps"

#: How long a server may take to accept its first connection (the contract says ~20 s).
READY_TIMEOUT_S = 20.0
#: How long a graceful stop of an idle server may take before the test calls it hung.
STOP_TIMEOUT_S = 15.0
#: Put in the server's process environment; it must never show up in a WSGI environ.
LEAK_CANARY = "FERROGATE_TEST_LEAK_CANARY_7f3a"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a server process: ours, minus settings, plus a leak canary."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERROGATE_")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", LEAK_CANARY_VAR=LEAK_CANARY)
    env.update(extra or {})
    return env


def _parse_bind(bind: str) -> tuple[int, object]:
    """(socket family, address) to connect to for one ``--bind`` value."""
    bind = bind.removeprefix("https://").removeprefix("http://").removeprefix("uwsgi://")
    if bind.startswith("unix:"):
        return socket.AF_UNIX, bind[len("unix:") :]
    if bind.startswith("["):
        host, _, port = bind[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = bind.rpartition(":")
    return socket.AF_INET, (host, int(port))


def can_connect(bind: str, timeout: float = 1.0) -> bool:
    family, address = _parse_bind(bind)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            return False
        return True


class Server:
    """One running ferrogate master process and what it wrote."""

    def __init__(self, proc: subprocess.Popen, binds: Sequence[str], workdir: Path):
        self.proc = proc
        self.binds = list(binds)
        self.workdir = workdir
        self.log_path = workdir / "stderr.log"
        self.out_path = workdir / "stdout.log"
        family, address = _parse_bind(self.binds[0]) if self.binds else (None, None)
        self.host, self.port = address if family == socket.AF_INET else ("127.0.0.1", None)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def is_running(self) -> bool:
        return self.proc.poll() is None

    # -- what the server wrote ------------------------------------------------------------

    def log(self) -> str:
        """Everything on the server's stderr so far (the default error log)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def log_mark(self) -> int:
        """A position in the error log; pass it to ``log_since`` to see only newer lines."""
        return self.log_path.stat().st_size

    def log_since(self, mark: int) -> str:
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", errors="replace")

    def wait_for_log(
        self, pattern: str, timeout: float = 10.0, since: int = 0, count: int = 1
    ) -> list[re.Match]:
        """Wait until ``pattern`` matches ``count`` times in the error log (after ``since``)."""
        return wait_for_text(lambda: self.log_since(since), pattern, timeout, count)

    # -- processes ------------------------------------------------------------------------

    def worker_pids(self) -> list[int]:
        """Child processes of the master, read from /proc (every thread's children list)."""
        pids: list[int] = []
        task_dir = Path(f"/proc/{self.pid}/task")
        try:
            tasks = list(task_dir.iterdir())
        except FileNotFoundError:
            return []
        for task in tasks:
            try:
                pids.extend(int(p) for p in (task / "children").read_text().split())
            except (FileNotFoundError, ProcessLookupError):
                continue
        return sorted(p for p in set(pids) if is_alive(p))

    def wait_for_workers(self, count: int, timeout: float = 15.0, exclude=()) -> list[int]:
        """Wait until exactly ``count`` live workers exist (none of them in ``exclude``)."""
        deadline = time.monotonic() + timeout
        pids: list[int] = []
        while time.monotonic() < deadline:
            pids = self.worker_pids()
            if len(pids) == count and not set(pids) & set(exclude):
                return pids
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} workers (not {sorted(exclude)}), have {pids}\n--- log:\n{self.log()}"
        )

    def send_signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the master is still running after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send ``sig`` and return the exit code; a master that does not exit fails the test."""
        if self.is_running():
            self.send_signal(sig)
        code = self.wait(timeout)
        if code is None:
            self.kill()
            raise AssertionError(
                f"server did not exit within {timeout}s of signal {sig}\n--- log:\n{self.log()}"
            )
        return code

    def kill(self) -> None:
        """Last resort: SIGKILL the whole process group we started (master and workers)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    # -- talking to it --------------------------------------------------------------------

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def connect(self, timeout: float = 10.0, bind: str | None = None) -> RawConnection:
        """A raw socket connection to the first bind (or to ``bind``)."""
        family, address = _parse_bind(bind or self.binds[0])
        return RawConnection(address, family=family, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """One request on a fresh connection (``Connection: close``), parsed exactly."""
        with self.connect(timeout) as conn:
            conn.send_request(method, path, body=body, headers=headers, close=True)
            return conn.read_response(method=method)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self.request("GET", path, headers=headers)


def thread_signal_mask(pid: int, name: str, timeout: float = 10.0) -> int:
    """The blocked-signal mask (SigBlk) of ``pid``'s thread named ``name``, once it exists."""
    deadline = time.monotonic() + timeout
    while True:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                if (task / "comm").read_text().strip() == name:
                    status = (task / "status").read_text()
                    line = next(x for x in status.splitlines() if x.startswith("SigBlk:"))
                    return int(line.split()[1], 16)
            except (FileNotFoundError, ProcessLookupError):
                continue
        if time.monotonic() > deadline:
            raise AssertionError(f"no thread named {name!r} in process {pid}")
        time.sleep(0.05)


#: Nice value for a server and client whose latency a test measures (see ``favoured``).
FAVOURED_NICE = -10


@contextlib.contextmanager
def favoured(server: Server) -> Iterator[None]:
    """Run the server (every thread of every process in its group, and the threads they
    start from now on) and the calling thread ahead of the rest of the machine.

    For tests that measure latency in milliseconds: on a shared 2-core machine, builds and
    other suites would otherwise decide it, through the scheduler's time slices (~12 ms),
    whatever the server does. What the server's own threads do to each other is unchanged.
    With autogroups (sched_autogroup_enabled), nice values only weigh threads within their
    session's group, so the server's session (its own: ``start`` makes one) and the test's
    get the nice value too, the test's until the block ends.
    """
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PGRP, server.pid, FAVOURED_NICE)
    # On Linux: this thread only, and the threads it starts from now on (clients).
    os.setpriority(os.PRIO_PROCESS, 0, FAVOURED_NICE)
    own_group = Path("/proc/self/autogroup")
    own_before = autogroup_nice(own_group)
    if own_before is not None:
        Path(f"/proc/{server.pid}/autogroup").write_text(str(FAVOURED_NICE))
        own_group.write_text(str(FAVOURED_NICE))
    try:
        yield
    finally:
        os.setpriority(os.PRIO_PROCESS, 0, before)
        if own_before is not None:
            own_group.write_text(own_before)


def autogroup_nice(path: Path) -> str | None:
    """The nice value of the autogroup ``path`` (/proc/PID/autogroup) names, or None where
    the kernel has no autogroups: the file is missing, or (autogroups off) reads empty."""
    try:
        match = re.fullmatch(r"/autogroup-\d+ nice (-?\d+)\s*", path.read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def is_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    match = re.search(r"^State:\s+(\S)", status, re.MULTILINE)
    return bool(match) and match.group(1) not in ("Z", "X")


def proc_status_kib(pid: int, field: str) -> int:
    """A ``/proc/PID/status`` memory field (VmRSS, VmHWM) in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match, f"no {field} in /proc/{pid}/status"
    return int(match.group(1))


def wait_for_text(read, pattern: str, timeout: float = 10.0, count: int = 1) -> list[re.Match]:
    """Poll ``read()`` until ``pattern`` (a regex, multiline) matches ``count`` times."""
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        text = read()
        matches = list(re.finditer(pattern, text, re.MULTILINE))
        if len(matches) >= count:
            return matches
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{pattern!r} matched {len(matches)} time(s), wanted {count}; text:\n{text[-4000:]}"
            )
        time.sleep(0.05)


def start(
    args: Sequence[str],
    binds: Sequence[str] = (),
    cwd: Path = APPS_DIR,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    argv_prefix: Sequence[str] | None = None,
) -> Server:
    """Start ``python -m ferrogate ARGS`` (``binds`` are added as ``--bind``) and wait for it.

    ``argv_prefix`` replaces ``[python, -m, ferrogate]`` (to run a script that calls the API).
    """
    workdir = Path(tempfile.mkdtemp(prefix="ferrogate-test-"))
    argv = list(argv_prefix or [sys.executable, "-m", "ferrogate"]) + list(args)
    for bind in binds:
        argv += ["--bind", bind]
    with open(workdir / "stderr.log", "wb") as err, open(workdir / "stdout.log", "wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=server_env(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    server = Server(proc, binds, workdir)
    if wait_ready:
        wait_until_ready(server)
    return server


def refused(args: Sequence[str], cwd: Path = APPS_DIR) -> tuple[int, str]:
    """Start ``python -m ferrogate ARGS`` on a free port, expecting it to refuse to start:
    its exit code and log, once it has exited (or been killed after 30 s)."""
    server = start(args, binds=[f"127.0.0.1:{free_port()}"], cwd=cwd, wait_ready=False)
    code = server.wait(30)
    server.kill()
    return code, server.log()


def start_script(argv: Sequence[str], bind: str, cwd: Path = APPS_DIR, env=None) -> Server:
    """Run ``python ARGV`` (a script that serves through the Python API) until ``bind`` accepts."""
    server = start([], cwd=cwd, env=env, wait_ready=False, argv_prefix=[sys.executable, *argv])
    server.binds = [bind]
    server.host, server.port = _parse_bind(bind)[1]
    wait_until_ready(server)
    return server


def wait_until_ready(server: Server, timeout: float = READY_TIMEOUT_S) -> None:
    """Poll-connect to the first bind until it accepts; fail early if the master exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_running():
            raise AssertionError(
                f"server exited with code {server.proc.returncode} before listening\n"
                f"--- argv: {server.proc.args}\n--- log:\n{server.log()}"
            )
        if can_connect(server.binds[0], timeout=0.5):
            return
        time.sleep(0.05)
    server.kill()
    raise AssertionError(f"server not accepting after {timeout}s\n--- log:\n{server.log()}")


@contextlib.contextmanager
def serve(
    spec: str,
    *flags: str,
    binds: Sequence[str] | None = None,
    cwd: Path = APPS_DIR,
    env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Run ``python -m ferrogate SPEC FLAGS`` on a free port (or on ``binds``) for a block.

    At the end the server gets SIGTERM and must exit with code 0; a test that already
    stopped it is left alone.
    """
    binds = list(binds) if binds else [f"127.0.0.1:{free_port()}"]
    server = start([spec, *flags], binds=binds, cwd=cwd, env=env)
    try:
        yield server
    finally:
        code = server.stop() if server.is_running() else None
        server.kill()  # anything left in the process group, such as orphaned workers
        if code is not None:
            assert code == 0, f"server exited {code} after SIGTERM\n--- log:\n{server.log()}"
