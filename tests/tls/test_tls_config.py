"""TLS settings that cannot work stop the start with one line naming the setting (and the
file), exit 2; gunicorn's TLS names carry over."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from tests.serving import APPS_DIR, free_port, serve, server_env


def start_fails(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ferrogate", "tls_app:app", *args],
        cwd=APPS_DIR,
        env=server_env(),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr.decode()
    return done.stderr.decode()


def test_https_bind_without_a_certificate(free_port):
    assert "needs a certificate: set --certfile" in start_fails(
        "--bind", f"https://127.0.0.1:{free_port}"
    )


def test_cert_reqs_without_ca_certs(pki, free_port):
    err = start_fails(
        "--certfile",
        str(pki.server.cert),
        "--keyfile",
        str(pki.server.key),
        "--cert-reqs",
        "required",
        "--bind",
        f"127.0.0.1:{free_port}",
    )
    assert "--cert-reqs: required needs --ca-certs" in err


def test_an_unknown_cipher_is_named(pki, free_port):
    err = start_fails(
        "--certfile",
        str(pki.server.cert),
        "--keyfile",
        str(pki.server.key),
        "--ciphers",
        "TLS13_AES_128_GCM_SHA256:RC4-MD5",
        "--bind",
        f"127.0.0.1:{free_port}",
    )
    assert 'unknown cipher suite "RC4-MD5"' in err


def test_missing_files_and_encrypted_keys_are_named(pki, tmp_path, free_port):
    bind = ("--bind", f"127.0.0.1:{free_port}")
    err = start_fails("--certfile", str(tmp_path / "nope.crt"), *bind)
    assert f"--certfile {tmp_path / 'nope.crt'}" in err
    encrypted = pki.ca.issue("encrypted", key_format="encrypted")
    err = start_fails("--certfile", str(encrypted.cert), "--keyfile", str(encrypted.key), *bind)
    assert f"--keyfile {encrypted.key}: the key is encrypted: give its password" in err
    err = start_fails(
        "--certfile",
        str(encrypted.cert),
        "--keyfile",
        str(encrypted.key),
        "--keyfile-password",
        "wrong",
        *bind,
    )
    assert f"--keyfile {encrypted.key}: cannot decrypt the key with --keyfile-password" in err
    # A key that is not the certificate's.
    err = start_fails("--certfile", str(pki.server.cert), "--keyfile", str(pki.client.key), *bind)
    assert f"--keyfile {pki.client.key}" in err


def test_proxy_protocol_on_a_tls_listener_is_refused(pki, free_port):
    err = start_fails(
        "--certfile",
        str(pki.server.cert),
        "--keyfile",
        str(pki.server.key),
        "--proxy-protocol",
        "--bind",
        f"127.0.0.1:{free_port}",
    )
    assert "--proxy-protocol: not supported yet on TLS listeners" in err


def test_a_gunicorn_config_file_with_tls_settings_carries_over(pki, tmp_path):
    port = free_port()
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        f"bind = 'https://127.0.0.1:{port}'\n"
        f"certfile = {str(pki.server.cert)!r}\n"
        f"keyfile = {str(pki.server.key)!r}\n"
        f"ca_certs = {str(pki.ca.path)!r}\n"
        "cert_reqs = 2\n"
        "do_handshake_on_connect = True\n"
        "suppress_ragged_eofs = True\n"
    )
    with serve("tls_app:app", "-c", str(conf), binds=[f"127.0.0.1:{port}"]) as server:
        del server
        response = requests.get(
            f"https://localhost:{port}/",
            verify=str(pki.ca.path),
            cert=(str(pki.client.cert), str(pki.client.key)),
        )
        assert response.json()["SSL_CLIENT_VERIFY"] == "SUCCESS"


@pytest.mark.parametrize(
    "flag", ["--certfile", "--keyfile", "--ca-certs", "--cert-reqs", "--ciphers"]
)
def test_gunicorn_flag_names_are_ours(flag):
    done = subprocess.run(
        [sys.executable, "-m", "ferrogate", "--help"], capture_output=True, env=server_env()
    )
    assert flag in done.stdout.decode()


def test_an_encrypted_key_is_read_with_its_password(pki):
    encrypted = pki.ca.issue("encrypted-ok", key_format="encrypted")
    port = free_port()
    flags = ("--certfile", str(encrypted.cert), "--keyfile", str(encrypted.key))
    env = {"FERROGATE_KEYFILE_PASSWORD": "secret"}
    with serve("tls_app:app", *flags, binds=[f"https://127.0.0.1:{port}"], env=env):
        response = requests.get(f"https://localhost:{port}/", verify=str(pki.ca.path))
        assert response.json()["HTTPS"] == "on"
    shown = subprocess.run(
        [sys.executable, "-m", "ferrogate", "tls_app:app", *flags, "--check-config"],
        cwd=APPS_DIR,
        env=server_env(env),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert 'keyfile_password = "(hidden)"' in shown and "secret" not in shown
