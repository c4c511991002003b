"""--reuse-port: each worker listens on a TCP socket of its own (SO_REUSEPORT) and the
kernel spreads new connections over them; the master only reserves the address, so no
connection ever waits on a socket that nobody accepts from."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.serving import serve

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def listening_sockets(port: int) -> int:
    """How many TCP sockets listen on 127.0.0.1:``port`` (all processes)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if local.endswith(f":{port:04X}") and state == LISTEN:
            count += 1
    return count


def wait_listening(port: int, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while listening_sockets(port) != count:
        assert time.monotonic() < deadline, f"{listening_sockets(port)} listeners, not {count}"
        time.sleep(0.05)


def pids_answering(server, requests: int) -> dict[int, int]:
    """pid -> how many of ``requests`` fresh connections it answered."""
    seen: dict[int, int] = {}
    for _ in range(requests):
        resp = server.get("/")
        assert resp.status == 200
        pid = json.loads(resp.body)["pid"]
        seen[pid] = seen.get(pid, 0) + 1
    return seen


@pytest.mark.timeout(60)
def test_each_worker_listens_on_its_own_socket_and_all_of_them_serve(tmp_path):
    with serve("reload_token:app", "--workers", "2", "--reuse-port") as server:
        workers = server.wait_for_workers(2)
        wait_listening(server.port, 2)
        seen = pids_answering(server, 200)
        assert set(seen) == set(workers), seen
        assert min(seen.values()) > 40, f"the kernel should spread connections: {seen}"

        # A new worker (TTIN) joins the group; a killed one is replaced by one that does.
        server.send_signal(signal.SIGTTIN)
        server.wait_for_workers(3)
        wait_listening(server.port, 3)
        server.send_signal(signal.SIGTTOU)
        server.wait_for_workers(2)
        wait_listening(server.port, 2)
        assert len(pids_answering(server, 60)) == 2


def test_without_reuse_port_the_workers_share_one_socket():
    with serve("reload_token:app", "--workers", "2") as server:
        server.wait_for_workers(2)
        assert listening_sockets(server.port) == 1


def test_reuse_port_still_refuses_an_address_taken_by_another_program(free_port):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", free_port))
        taken.listen()
        from tests.serving import start

        server = start(["hello:app", "--reuse-port"], binds=[f"127.0.0.1:{free_port}"],
                       wait_ready=False)
        assert server.wait(20) == 4, server.log()
        assert f"cannot listen on 127.0.0.1:{free_port}" in server.log()
