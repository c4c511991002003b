"""The Python API serves https: ``make_server(..., certfile=, keyfile=)`` and
``ferrogate.run(app, certfile=, keyfile=)``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from tests.serving import APPS_DIR, free_port, server_env, start_script


def run_api_tls(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "api_tls.py", *args],
        cwd=APPS_DIR,
        env=server_env(),
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_make_server_serves_https(pki):
    seen = run_api_tls(str(pki.server.cert), str(pki.server.key), str(pki.ca.path))
    assert seen == {"seen": ["https", "on"]}


def test_make_server_names_a_certificate_that_does_not_load(pki, tmp_path):
    missing = tmp_path / "missing.pem"
    seen = run_api_tls(str(missing), str(pki.server.key), str(pki.ca.path))
    assert seen["error"].startswith(f"--certfile {missing}:")


def test_run_takes_certfile_and_keyfile(pki, tmp_path):
    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(
        "import ferrogate, tls_app\n"
        f"ferrogate.run(tls_app.app, bind='https://127.0.0.1:{port}', "
        f"certfile={str(pki.server.cert)!r}, keyfile={str(pki.server.key)!r})\n"
    )
    server = start_script([str(script)], f"127.0.0.1:{port}", env={"PYTHONPATH": str(APPS_DIR)})
    try:
        environ = requests.get(f"https://localhost:{port}/", verify=str(pki.ca.path)).json()
        assert environ["HTTPS"] == "on"
    finally:
        assert server.stop() == 0
        server.kill()


def test_the_eventlet_example_ssl_variant_serves_https(pki):
    """eventlet's SSL example: wsgi.server(wrap_ssl(listen(...), certfile=..., keyfile=...,
    server_side=True), app), with ferrogate's imports (tests/apps/eventlet_style.py)."""
    from tests.api.test_eventlet_compat import Script

    options = {"wrap_ssl": {"certfile": str(pki.server.cert), "keyfile": str(pki.server.key)}}
    with Script("ferrogate", options) as script:
        response = requests.get(f"https://localhost:{script.port}/", verify=str(pki.ca.path))
        assert (response.status_code, response.content) == (200, b"Hello, World!\r\n")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"https://localhost:{script.port}/", verify=True)
