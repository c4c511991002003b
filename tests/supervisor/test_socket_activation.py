"""Inherited listening sockets: --bind fd://N, and systemd socket activation (LISTEN_FDS and
LISTEN_PID set exactly as systemd sets them: descriptors from 3, LISTEN_PID the pid of the
process it execs), which is used when no --bind is given. Also --backlog."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.serving import APPS_DIR, Server, server_env, wait_until_ready

EXIT_USAGE = 2
EXIT_BIND = 4


def listening_tcp(backlog: int = 16) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


def run_server(argv, tmp_path: Path, **popen) -> Server:
    err, out = open(tmp_path / "stderr.log", "wb"), open(tmp_path / "stdout.log", "wb")
    with err, out:
        proc = subprocess.Popen(
            argv, cwd=APPS_DIR, stdout=out, stderr=err, start_new_session=True,
            **popen,
        )  # fmt: skip
    return Server(proc, [], tmp_path)


def as_systemd(ferrogate_args: list[str], fds: list[int]) -> list[str]:
    """argv that starts ferrogate the way systemd does: the sockets at descriptors 3.. (moved
    there from ``fds``), LISTEN_PID set to the pid that then execs ferrogate."""
    count = len(fds)
    moves = " ".join(f"{3 + i}<&{fd} {fd}<&-" for i, fd in enumerate(fds))
    quoted = " ".join(f"'{a}'" for a in [sys.executable, "-m", "ferrogate", *ferrogate_args])
    script = f"exec {moves}; LISTEN_PID=$$ LISTEN_FDS={count} exec {quoted}"
    return ["bash", "-c", script]


def test_bind_fd_serves_an_inherited_socket(tmp_path):
    sock = listening_tcp()
    port = sock.getsockname()[1]
    fd = sock.fileno()
    argv = [sys.executable, "-m", "ferrogate", "hello:app", "--bind", f"fd://{fd}"]
    server = run_server(argv, tmp_path, pass_fds=(fd,), env=server_env())
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    sock.close()  # the server holds its own copy now
    try:
        wait_until_ready(server)
        assert server.get("/").body == b"app"
        assert f"Listening at http://127.0.0.1:{port}" in server.log()
    finally:
        assert server.stop() == 0, server.log()


def test_bind_fd_that_is_not_a_listening_socket_fails_at_start(tmp_path):
    with open(tmp_path / "plain.txt", "w") as plain:
        fd = plain.fileno()
        argv = [sys.executable, "-m", "ferrogate", "hello:app", "--bind", f"fd://{fd}"]
        server = run_server(argv, tmp_path, pass_fds=(fd,), env=server_env())
        code = server.wait(30)
    assert code == EXIT_BIND, server.log()
    assert f"cannot listen on fd://{fd}: the descriptor is not a listening socket" in server.log()


def test_systemd_socket_activation_tcp_and_unix(tmp_path):
    tcp = listening_tcp()
    port = tcp.getsockname()[1]
    path = tmp_path / "activated.sock"
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(path))
    unix.listen(16)
    # Copies at free descriptors from 200 up, out of the way of pytest's own.
    fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 200) for s in (tcp, unix)]
    try:
        argv = as_systemd(["environ_dump:app", "--workers", "2"], fds)
        server = run_server(argv, tmp_path, pass_fds=tuple(fds), env=server_env())
    finally:
        for fd in fds:
            os.close(fd)
    tcp.close()
    unix.close()
    server.binds, server.host, server.port = [f"127.0.0.1:{port}"], "127.0.0.1", port
    try:
        wait_until_ready(server)
        server.wait_for_workers(2)
        environ = json.loads(server.get("/").body)
        assert "LISTEN_FDS" not in environ and "LISTEN_PID" not in environ
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(10)
            client.connect(str(path))
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := client.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200 OK")
        log = server.log()
        assert f"Listening at http://127.0.0.1:{port}" in log
        assert f"Listening at fd://4 (unix:{path})" in log
    finally:
        assert server.stop() == 0, server.log()
    # systemd owns the socket file: it is not removed on exit.
    assert path.exists()


def test_systemd_sockets_for_another_pid_are_ignored(tmp_path):
    """LISTEN_PID of another process: the variables were meant for it (then the default
    --bind is used, which this test takes away first, so the server must fail to bind it)."""
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", 8000))
    except OSError:
        pass  # something already listens on the default address: the server cannot bind it
    else:
        blocker.listen(1)
    try:
        env = server_env({"LISTEN_PID": "1", "LISTEN_FDS": "1"})
        server = run_server([sys.executable, "-m", "ferrogate", "hello:app"], tmp_path, env=env)
        code = server.wait(30)
    finally:
        blocker.close()
    assert code == EXIT_BIND, server.log()
    assert "cannot listen on 127.0.0.1:8000" in server.log()


def test_the_same_descriptor_twice_is_refused(tmp_path):
    sock = listening_tcp()
    fd = sock.fileno()
    argv = [sys.executable, "-m", "ferrogate", "hello:app", "-b", f"fd://{fd}", "-b", f"fd://{fd}"]
    server = run_server(argv, tmp_path, pass_fds=(fd,), env=server_env())
    code = server.wait(30)
    sock.close()
    assert code == EXIT_USAGE, server.log()
    assert f"--bind fd://{fd} is given twice" in server.log()


def test_backlog_is_applied_to_the_listener(tmp_path):
    """The kernel reports a listener's backlog as its Send-Q in `ss -ltn`."""
    from tests.serving import free_port, serve

    port = free_port()
    with serve("hello:app", "--backlog", "77", binds=[f"127.0.0.1:{port}"]):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
            ).stdout.split()
            if out:
                break
        assert out[2] == "77", out
