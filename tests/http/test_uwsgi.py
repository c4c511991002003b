"""--protocol uwsgi: Debian's nginx with `uwsgi_pass` in front of ferrogate (TCP and a Unix
socket) gives the app the same request as plain HTTP does, bodies both ways included; raw
packets check trust (REMOTE_ADDR believed only from --forwarded-allow-ips) and refusals."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import struct

import pytest

from tests.nginx import running_nginx
from tests.serving import free_port

pytestmark = pytest.mark.timeout(60)

UWSGI_PARAMS = "/etc/nginx/uwsgi_params"


@pytest.fixture(scope="module")
def plain(serve):
    with serve("gateway_echo:app") as server:
        yield server


@pytest.fixture(scope="module")
def uwsgi_server(serve):
    with serve("gateway_echo:app", "--protocol", "uwsgi") as server:
        yield server


@pytest.fixture(scope="module")
def nginx(uwsgi_server, tmp_path_factory):
    """nginx on a free port: /unix/ goes to a second ferrogate on a Unix socket, the rest to
    the TCP one. Its workers run as root (user="root") so they may write their body buffers
    in the test's folder and connect to the socket ferrogate made."""
    assert os.path.exists(UWSGI_PARAMS), "nginx's uwsgi_params is missing (apt-get install nginx)"
    folder = tmp_path_factory.mktemp("nginx-uwsgi")
    port = free_port()
    conf = f"""
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    uwsgi_temp_path {folder}/uwsgi;
    client_max_body_size 64m;
    server {{
        listen 127.0.0.1:{port};
        location /unix/ {{
            include {UWSGI_PARAMS};
            uwsgi_pass unix:{folder}/ferrogate.sock;
        }}
        location / {{
            include {UWSGI_PARAMS};
            uwsgi_pass 127.0.0.1:{uwsgi_server.port};
        }}
    }}
}}
"""
    yield port, folder, conf


def fetch(port: int, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_nginx_uwsgi_pass_gives_the_app_what_plain_http_does(plain, nginx, serve):
    port, folder, conf = nginx
    headers = {"X-Custom-Thing": "yes", "User-Agent": "uwsgi-test", "Host": "example.org"}
    path = "/caf%C3%A9/x?a=1&b=%20"
    with serve("gateway_echo:app", "--protocol", "uwsgi", binds=[f"unix:{folder}/ferrogate.sock"]):
        with running_nginx(folder, port, conf, user="root"):
            through, _ = fetch(port, "GET", "/env", headers=headers)
            via, via_body = fetch(port, "GET", path, headers=headers)
            unix, unix_body = fetch(port, "GET", "/unix/x?q=1", headers=headers)
    direct, direct_body = fetch(plain.port, "GET", path, headers=headers)
    assert [through.status, via.status, direct.status, unix.status] == [200] * 4
    via_env, direct_env = json.loads(via_body), json.loads(direct_body)
    # nginx adds nothing the app would notice but its own Connection handling.
    via_env["headers"].pop("HTTP_CONNECTION", None)
    direct_env["headers"].pop("HTTP_CONNECTION", None)
    for key in ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "SERVER_PROTOCOL", "REMOTE_ADDR",
                "wsgi.url_scheme", "SCRIPT_NAME", "SERVER_NAME", "headers"):  # fmt: skip
        assert via_env[key] == direct_env[key], (key, via_env[key], direct_env[key])
    assert via_env["PATH_INFO"] == "/café/x".encode().decode("latin-1")
    assert via_env["QUERY_STRING"] == "a=1&b=%20"
    assert via_env["SERVER_PORT"] == str(port), "nginx's own port, from the vars"
    assert json.loads(unix_body)["PATH_INFO"] == "/unix/x"
    assert via.getheader("Content-Type") == "application/json"


def test_bodies_go_both_ways_through_nginx(nginx, serve):
    port, folder, conf = nginx
    upload = os.urandom(3 * 1024 * 1024 + 7)
    with running_nginx(folder, port, conf, user="root"):
        answer, body = fetch(port, "POST", "/digest", body=upload,
                             headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        streamed, streamed_body = fetch(port, "GET", "/stream")
        empty, empty_body = fetch(port, "POST", "/digest", body=b"")
    assert answer.status == 200
    assert json.loads(body) == {
        "length": len(upload), "sha256": hashlib.sha256(upload).hexdigest()
    }  # fmt: skip
    assert streamed.status == 200
    assert streamed_body == b"".join(f"chunk {i}\n".encode() for i in range(5))
    assert json.loads(empty_body)["length"] == 0


def packet(variables: dict[str, str], body: bytes = b"") -> bytes:
    block = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v.encode())) + v.encode()
        for k, v in variables.items()
    )
    return struct.pack("<BHB", 0, len(block), 0) + block + body


def exchange(port: int, data: bytes) -> bytes:
    """Sends ``data`` and reads until the server closes: one request per connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


SPOOFED = {
    "REQUEST_METHOD": "GET", "REQUEST_URI": "/env", "PATH_INFO": "/env",
    "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "203.0.113.9", "REMOTE_PORT": "4000",
    "HTTPS": "on", "HTTP_HOST": "example.org",
}  # fmt: skip


def test_the_client_address_and_scheme_are_believed_only_from_trusted_peers(serve, uwsgi_server):
    trusted = exchange(uwsgi_server.port, packet(SPOOFED))
    assert trusted.startswith(b"HTTP/1.1 200 "), trusted[:80]
    env = json.loads(trusted.split(b"\r\n\r\n", 1)[1])
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("203.0.113.9", "https")
    elsewhere = ("--forwarded-allow-ips", "192.0.2.1")
    with serve("gateway_echo:app", "--protocol", "uwsgi", *elsewhere) as s:
        untrusted = exchange(s.port, packet(SPOOFED))
    env = json.loads(untrusted.split(b"\r\n\r\n", 1)[1])
    assert (env["REMOTE_ADDR"], env["wsgi.url_scheme"]) == ("127.0.0.1", "http")


def test_a_response_of_unknown_length_ends_with_the_connection_not_chunked(uwsgi_server):
    raw = exchange(uwsgi_server.port, packet({**SPOOFED, "REQUEST_URI": "/stream"}))
    head, body = raw.split(b"\r\n\r\n", 1)
    assert b"transfer-encoding" not in head.lower() and b"connection: close" in head.lower()
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"\x05\x03\x00\x00abc", "modifier1 5"),
        (packet({"REQUEST_URI": "/"}), "without REQUEST_METHOD"),
        (packet({"REQUEST_METHOD": "GET", "REQUEST_URI": "http://evil/"}), "REQUEST_URI"),
        (b"\x00\x05\x00\x00\x09\x00AB\x00", "cut inside a variable"),
    ],
)
def test_malformed_packets_get_a_400_and_one_log_line(uwsgi_server, data, named):
    mark = uwsgi_server.log_mark()
    raw = exchange(uwsgi_server.port, data)
    assert raw.startswith(b"HTTP/1.1 400 "), raw[:80]
    uwsgi_server.wait_for_log(named, since=mark)


def test_header_limits_apply_to_uwsgi_variables(serve):
    with serve("gateway_echo:app", "--protocol", "uwsgi", "--limit-request-fields", "3") as s:
        at = {**SPOOFED, "HTTP_A": "1", "HTTP_B": "2"}  # Host, A, B: three fields
        above = {**at, "HTTP_C": "3"}
        assert exchange(s.port, packet(at)).startswith(b"HTTP/1.1 200 ")
        assert exchange(s.port, packet(above)).startswith(b"HTTP/1.1 431 ")
