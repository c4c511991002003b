"""TLS session resumption across workers: a session begun on one worker resumes on whichever
worker the kernel hands the next connection (--workers 2 --reuse-port), by TLS 1.3 ticket,
TLS 1.2 ticket, and TLS 1.2 session id (the shared session cache), and still does after a
SIGHUP has replaced every worker. Checked with ``openssl s_client -sess_out``/``-sess_in``
and the worker's pid in each response."""

from __future__ import annotations

import re
import signal
import subprocess

import pytest

from tests.tls.conftest import serve_tls
from tests.tls.test_tls import OPENSSL

#: Resumptions per case: with two workers, the chance that none lands on the worker that did
#: not begin the session is 2**-RESUMPTIONS.
RESUMPTIONS = 12

REQUEST = b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"


def s_client(server, pki, *args: str) -> tuple[bool, int]:
    """(whether the session was reused, the pid of the worker that answered)."""
    assert OPENSSL, "openssl is needed (Debian package openssl)"
    host_port = server.https.removeprefix("https://")
    done = subprocess.run(
        [OPENSSL, "s_client", "-connect", host_port, "-servername", "localhost"]
        + ["-CAfile", str(pki.ca.path), "-ign_eof", *args],
        input=REQUEST,
        capture_output=True,
        timeout=20,
    )
    out = done.stdout.decode(errors="replace")
    assert done.returncode == 0, out + done.stderr.decode(errors="replace")
    pid = re.search(r"\r\n\r\n(\d+)", out)
    assert pid, out
    reused = re.search(r"^(New|Reused), ", out, re.MULTILINE)
    assert reused, out
    return reused.group(1) == "Reused", int(pid.group(1))


def resumes_everywhere(server, pki, tmp_path, *version: str) -> set[int]:
    """Begins one session, resumes it RESUMPTIONS times; every one must be reused. Returns
    the pids that resumed it."""
    session = tmp_path / "session.pem"
    reused, first = s_client(server, pki, *version, "-sess_out", str(session))
    assert not reused
    pids = set()
    for _ in range(RESUMPTIONS):
        reused, pid = s_client(server, pki, *version, "-sess_in", str(session))
        assert reused, f"a full handshake on worker {pid} (session begun on {first})"
        pids.add(pid)
    return pids


VERSIONS = {
    "tls13-ticket": ("-tls1_3",),
    "tls12-ticket": ("-tls1_2",),
    "tls12-session-id": ("-tls1_2", "-no_ticket"),
}


@pytest.mark.parametrize("version", VERSIONS.values(), ids=VERSIONS.keys())
def test_a_session_resumes_on_every_worker(pki, tmp_path, version):
    with serve_tls(pki.server, "--workers", "2", "--reuse-port") as server:
        workers = set(server.wait_for_workers(2))
        pids = resumes_everywhere(server, pki, tmp_path, *version)
        # Both workers resumed it: the one that began it and the other, whose first
        # resumption it was (rustls' own ticketer refused that one).
        assert pids == workers


def test_sessions_survive_a_sighup_that_replaces_every_worker(pki, tmp_path):
    with serve_tls(pki.server, "--workers", "2", "--reuse-port") as server:
        old = set(server.wait_for_workers(2))
        sessions = {}
        for name, version in VERSIONS.items():
            sessions[name] = tmp_path / f"{name}.pem"
            reused, _ = s_client(server, pki, *version, "-sess_out", str(sessions[name]))
            assert not reused
        mark = server.log_mark()
        server.send_signal(signal.SIGHUP)
        server.wait_for_log("loaded the TLS certificate again", since=mark)
        new = set(server.wait_for_workers(2, exclude=old))
        # Wait until the old workers are gone, so every connection reaches a new one.
        for _ in range(200):
            if not old & set(server.worker_pids()):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        for name, version in VERSIONS.items():
            for _ in range(4):
                reused, pid = s_client(server, pki, *version, "-sess_in", str(sessions[name]))
                assert pid in new
                assert reused, f"{name}: a full handshake on {pid} after the SIGHUP"
