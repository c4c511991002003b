"""Files sent over TLS are read, never memory-mapped: rustls encrypts in user space, where a
mapping of a file truncated meanwhile would raise SIGBUS and kill the worker with every
connection it serves. Static files (--static) and wsgi.file_wrapper, whole and truncated."""

from __future__ import annotations

import os
import socket
import time

import pytest
import requests

from tests.serving import free_port, serve
from tests.tls.conftest import client_context, tls_flags

SIZE = 64 * 1024 * 1024


@pytest.fixture
def served(pki, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    port = free_port()
    flags = tls_flags(pki.server, "--static", f"/static={static}", "--socket-timeout", "5")
    with serve("tls_app:app", *flags, binds=[f"https://127.0.0.1:{port}"]) as server:
        server.base = f"https://localhost:{port}"
        server.tcp_port = port
        yield server, static


def pid(server, pki) -> str:
    return requests.get(server.base + "/pid", verify=str(pki.ca.path), timeout=10).text


def test_large_static_files_and_file_wrapper_bodies_arrive_whole(served, pki):
    server, static = served
    body = os.urandom(3 * 1024 * 1024 + 17)
    (static / "big.bin").write_bytes(body)
    got = requests.get(server.base + "/static/big.bin", verify=str(pki.ca.path), timeout=30)
    assert got.status_code == 200 and got.content == body
    ranged = requests.get(
        server.base + "/static/big.bin",
        headers={"Range": "bytes=100-2000000"},
        verify=str(pki.ca.path),
        timeout=30,
    )
    assert ranged.status_code == 206 and ranged.content == body[100:2000001]
    wrapped = requests.get(
        server.base + f"/wrap?{static / 'big.bin'}", verify=str(pki.ca.path), timeout=30
    )
    assert wrapped.content == body


@pytest.mark.parametrize("route", ["/static/shrinking.bin", "/wrap?{path}"])
@pytest.mark.timeout(60)
def test_a_file_truncated_while_it_is_sent_does_not_kill_the_worker(served, pki, route):
    server, static = served
    path = static / "shrinking.bin"
    path.write_bytes(b"x" * SIZE)
    before = pid(server, pki)
    target = route.format(path=path)
    with socket.create_connection(("127.0.0.1", server.tcp_port), timeout=15) as raw:
        tls = client_context(pki).wrap_socket(raw, server_hostname="localhost")
        tls.sendall(f"GET {target} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        received = len(tls.recv(65536))
        while received < 1024 * 1024:
            received += len(tls.recv(65536))
        os.truncate(path, 0)
        time.sleep(0.2)
        # The rest of the response: short of the 64 MiB, then a close (or a reset).
        try:
            while chunk := tls.recv(1024 * 1024):
                received += len(chunk)
        except (ConnectionError, OSError):
            pass
        tls.close()
    assert received < SIZE + 4096
    assert pid(server, pki) == before, "the worker died (SIGBUS?) and was replaced"
    assert "signal" not in server.log().lower()
