"""`--bind uwsgi://host:port` and `uwsgi://unix:/path`: the uwsgi protocol on that listener
only, so one server answers plain HTTP clients on one port and Debian's nginx (`uwsgi_pass`)
on another, from the command line or a config file; uwsgi over TLS is refused at start."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys

import pytest

from tests.http.test_uwsgi import SPOOFED, UWSGI_PARAMS, exchange, fetch, packet
from tests.nginx import running_nginx
from tests.serving import APPS_DIR, free_port, serve, server_env, start, wait_until_ready
from tests.tls.certs import Authority

pytestmark = pytest.mark.timeout(60)

COMPARED = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "REMOTE_ADDR",
            "wsgi.url_scheme", "SCRIPT_NAME", "SERVER_NAME")  # fmt: skip
HEADERS = {"X-Custom-Thing": "yes", "User-Agent": "uwsgi-bind-test", "Host": "example.org"}


def nginx_conf(folder, port: int, uwsgi_port: int) -> str:
    return f"""
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    uwsgi_temp_path {folder}/uwsgi;
    server {{
        listen 127.0.0.1:{port};
        location /unix/ {{ include {UWSGI_PARAMS}; uwsgi_pass unix:{folder}/uwsgi.sock; }}
        location / {{ include {UWSGI_PARAMS}; uwsgi_pass 127.0.0.1:{uwsgi_port}; }}
    }}
}}
"""


def check_both_protocols(http_port: int, nginx_port: int) -> None:
    """nginx's requests (uwsgi, TCP and Unix) give the app what a plain HTTP client's do."""
    path = "/caf%C3%A9/x?a=1"
    direct, direct_body = fetch(http_port, "GET", path, headers=HEADERS)
    via, via_body = fetch(nginx_port, "GET", path, headers=HEADERS)
    unix, unix_body = fetch(nginx_port, "GET", "/unix/y?q=1", headers=HEADERS)
    assert (direct.status, via.status, unix.status) == (200, 200, 200)
    direct_env, via_env = json.loads(direct_body), json.loads(via_body)
    for key in COMPARED:
        assert via_env[key] == direct_env[key], (key, via_env[key], direct_env[key])
    via_env["headers"].pop("HTTP_CONNECTION", None)
    direct_env["headers"].pop("HTTP_CONNECTION", None)
    assert via_env["headers"] == direct_env["headers"]
    assert via_env["SERVER_PORT"] == str(nginx_port), "nginx's port, from the uwsgi vars"
    assert direct_env["SERVER_PORT"] == "80", "the Host's (no port: 80), as plain HTTP gives it"
    assert json.loads(unix_body)["PATH_INFO"] == "/unix/y"


def test_one_server_speaks_http_on_one_port_and_uwsgi_on_others(tmp_path):
    http_port, uwsgi_port, nginx_port = free_port(), free_port(), free_port()
    binds = [f"127.0.0.1:{http_port}", f"uwsgi://127.0.0.1:{uwsgi_port}",
             f"uwsgi://unix:{tmp_path}/uwsgi.sock"]  # fmt: skip
    with serve("gateway_echo:app", binds=binds) as server:
        server.wait_for_log(rf"Listening at uwsgi://127\.0\.0\.1:{uwsgi_port}")
        server.wait_for_log(rf"Listening at uwsgi://unix:{tmp_path}/uwsgi\.sock")
        server.wait_for_log(rf"Listening at http://127\.0\.0\.1:{http_port}")
        with running_nginx(tmp_path, nginx_port, nginx_conf(tmp_path, nginx_port, uwsgi_port),
                           user="root"):  # fmt: skip
            check_both_protocols(http_port, nginx_port)
        # Each listener speaks only its own protocol: an HTTP request on the uwsgi port is
        # no packet (400), a packet on the HTTP port is no request line (400).
        assert exchange(uwsgi_port, b"GET /env HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
            b"HTTP/1.1 400 "
        )
        assert exchange(http_port, packet(SPOOFED)).startswith(b"HTTP/1.1 400 ")


def test_protocol_uwsgi_stays_the_default_of_binds_without_a_scheme():
    http_port, uwsgi_port = free_port(), free_port()
    binds = [f"127.0.0.1:{uwsgi_port}", f"http://127.0.0.1:{http_port}"]
    with serve("gateway_echo:app", "--protocol", "uwsgi", binds=binds):
        assert exchange(uwsgi_port, packet(SPOOFED)).startswith(b"HTTP/1.1 200 ")
        response, body = fetch(http_port, "GET", "/env")
        assert response.status == 200 and json.loads(body)["PATH_INFO"] == "/env"


def test_uwsgi_binds_from_a_config_file(tmp_path):
    http_port, uwsgi_port, nginx_port = free_port(), free_port(), free_port()
    config = tmp_path / "ferrogate.toml"
    config.write_text(
        f'app = "gateway_echo:app"\nbind = ["127.0.0.1:{http_port}", '
        f'"uwsgi://127.0.0.1:{uwsgi_port}", "uwsgi://unix:{tmp_path}/uwsgi.sock"]\n'
    )
    server = start(["-c", str(config)], cwd=APPS_DIR, wait_ready=False)
    server.binds = [f"127.0.0.1:{http_port}"]
    try:
        wait_until_ready(server)
        with running_nginx(tmp_path, nginx_port, nginx_conf(tmp_path, nginx_port, uwsgi_port),
                           user="root"):  # fmt: skip
            check_both_protocols(http_port, nginx_port)
    finally:
        assert server.stop() == 0, server.log()


def start_and_fail(*args: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "ferrogate", "gateway_echo:app", *args]
    return subprocess.run(argv, cwd=APPS_DIR, env=server_env(), capture_output=True, text=True,
                          timeout=30)  # fmt: skip


def test_uwsgi_over_tls_is_refused_at_start_naming_the_bind(tmp_path):
    authority = Authority(tmp_path)
    issued = authority.issue("server")
    certificate = ("--certfile", str(issued.cert), "--keyfile", str(issued.key))
    plain, implied = free_port(), free_port()
    binds = ("--bind", f"uwsgi://127.0.0.1:{plain}", "--bind", f"127.0.0.1:{implied}")
    result = start_and_fail("--protocol", "uwsgi", *certificate, *binds)
    assert result.returncode == 2, result.stderr
    assert (f"--bind: 127.0.0.1:{implied} serves TLS (--certfile, no scheme) and --protocol "
            "uwsgi is not served over TLS") in result.stderr  # fmt: skip
    # uwsgi:// is plain even with a certificate, and https:// is HTTP under --protocol uwsgi.
    https = free_port()
    with serve("gateway_echo:app", "--protocol", "uwsgi", *certificate,
               binds=[f"uwsgi://127.0.0.1:{plain}", f"https://127.0.0.1:{https}"]):  # fmt: skip
        assert exchange(plain, packet(SPOOFED)).startswith(b"HTTP/1.1 200 ")
        context = ssl.create_default_context(cafile=str(authority.path))
        conn = http.client.HTTPSConnection("localhost", https, context=context, timeout=10)
        conn.request("GET", "/env")
        assert json.loads(conn.getresponse().read())["wsgi.url_scheme"] == "https"
        conn.close()


@pytest.mark.parametrize("bind", ["uwsgi://fd://3", "uwsgi://3031", "https://unix:/tmp/x.sock"])
def test_a_scheme_in_the_wrong_place_is_refused(bind):
    result = start_and_fail("--bind", bind)
    assert result.returncode != 0
    assert bind in result.stderr, result.stderr
