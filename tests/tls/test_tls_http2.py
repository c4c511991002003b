"""HTTP/2 over TLS, chosen by ALPN: curl --http2, nghttp and httpx (http2=True) verify the
certificate and get HTTP/2; `--http 1` never offers h2, and an HTTP/1.1-only client on the same
port is served HTTP/1.1."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import httpx
import pytest

from tests.tls.conftest import serve_tls

pytestmark = pytest.mark.timeout(60)


def curl(*args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("curl")
    assert binary, "curl is needed (apt-get install curl)"
    return subprocess.run([binary, "-s", *args], capture_output=True, text=True, timeout=30)


def test_curl_negotiates_h2_by_alpn_and_the_app_sees_http2_over_https(pki):
    with serve_tls(pki.server) as server:
        done = curl("--http2", "--cacert", str(pki.ca.path), "-w", "\n%{http_version}",
                    f"{server.https}/env")  # fmt: skip
        body, version = done.stdout.rsplit("\n", 1)
        assert done.returncode == 0 and version == "2", done.stderr
        environ = json.loads(body)
        assert environ["SERVER_PROTOCOL"] == "HTTP/2"
        assert environ["wsgi.url_scheme"] == "https" and environ["HTTPS"] == "on"
        assert environ["SSL_PROTOCOL"].startswith("TLSv1.")
        older = curl("--http1.1", "--cacert", str(pki.ca.path), "-w", "\n%{http_version}",
                     f"{server.https}/env")  # fmt: skip
        assert older.stdout.rsplit("\n", 1)[1] == "1.1"
        assert json.loads(older.stdout.rsplit("\n", 1)[0])["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_httpx_and_nghttp_speak_h2_over_tls(pki):
    with serve_tls(pki.server) as server:
        verify = ssl.create_default_context(cafile=str(pki.ca.path))
        with httpx.Client(http2=True, verify=verify) as client:
            responses = [client.get(f"{server.https}/env") for _ in range(3)]
        assert {r.http_version for r in responses} == {"HTTP/2"}
        assert all(r.json()["SERVER_PROTOCOL"] == "HTTP/2" for r in responses)
        nghttp = shutil.which("nghttp")
        assert nghttp, "nghttp is needed (apt-get install nghttp2-client)"
        done = subprocess.run([nghttp, "-n", "-s", f"{server.https}/env"],
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        assert done.returncode == 0, done.stderr


def test_http_1_only_never_offers_h2(pki):
    with serve_tls(pki.server, "--http", "1") as server:
        done = curl("--http2", "--cacert", str(pki.ca.path), "-w", "\n%{http_version}",
                    f"{server.https}/env")  # fmt: skip
        assert done.returncode == 0 and done.stdout.rsplit("\n", 1)[1] == "1.1"
