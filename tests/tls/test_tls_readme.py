"""The README's TLS commands, run as written: a self-signed development certificate made with
Debian's openssl, served, and fetched by curl trusting only that certificate."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.serving import free_port, serve


def test_self_signed_development_certificate(tmp_path):
    openssl, curl = shutil.which("openssl"), shutil.which("curl")
    assert openssl and curl, "openssl and curl are needed (Debian packages openssl, curl)"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            "dev-key.pem",
            "-out",
            "dev-cert.pem",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    cert, key = tmp_path / "dev-cert.pem", tmp_path / "dev-key.pem"
    port = free_port()
    flags = ("--certfile", str(cert), "--keyfile", str(key))
    with serve("tls_app:app", *flags, binds=[f"127.0.0.1:{port}"]):
        out = subprocess.run(
            [curl, "-sS", "--cacert", str(cert), f"https://localhost:{port}/"],
            capture_output=True,
            check=True,
        )
        assert json.loads(out.stdout)["wsgi.url_scheme"] == "https"


def test_https_and_http_binds_side_by_side_as_for_lets_encrypt(pki):
    """The Let's Encrypt command's shape: fullchain (certificate then chain) and a PKCS#8 key,
    an https:// bind and an http:// one."""
    curl = shutil.which("curl")
    assert curl, "curl is needed"
    https, http = free_port(), free_port()
    flags = ("--certfile", str(pki.server.cert), "--keyfile", str(pki.server.key))
    binds = [f"https://127.0.0.1:{https}", f"http://127.0.0.1:{http}"]
    with serve("tls_app:app", *flags, binds=binds):
        secure = subprocess.run(
            [curl, "-sS", "--cacert", str(pki.ca.path), f"https://localhost:{https}/"],
            capture_output=True,
            check=True,
        )
        assert json.loads(secure.stdout)["HTTPS"] == "on"
        plain = subprocess.run(
            [curl, "-sS", f"http://127.0.0.1:{http}/"], capture_output=True, check=True
        )
        assert json.loads(plain.stdout)["HTTPS"] is None
