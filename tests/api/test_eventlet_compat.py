"""``ferrogate.wsgi.server`` / ``ferrogate.listen``: eventlet.wsgi's API. The example script
(apps/eventlet_style.py) runs with one import changed, and each parameter keeps eventlet's
meaning; where both can answer, real eventlet (a dev dependency) serves the same script and
the answers are compared."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time

import pytest

from tests.serving import free_port, start_script

pytestmark = pytest.mark.timeout(60)


class Script:
    """apps/eventlet_style.py under one backend, stopped with SIGTERM (server() returns)."""

    def __init__(self, backend: str, options: dict | None = None, limits: dict | None = None):
        self.port = free_port()
        argv = ["eventlet_style.py", backend, str(self.port), json.dumps(options or {})]
        self.server = start_script([*argv, json.dumps(limits or {})], f"127.0.0.1:{self.port}")

    def __enter__(self) -> Script:
        return self

    def __exit__(self, *exc) -> None:
        self.code = self.server.stop()

    def wait_for_stdout(self, text: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.server.stdout():
            assert time.monotonic() < deadline, f"{text!r} not printed: {self.server.stdout()}"
            time.sleep(0.05)

    def get(self, path: str, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return response, body

    def raw(self, request: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def test_the_example_serves_and_its_python2_str_body_is_a_500_naming_the_fix():
    with Script("ferrogate") as script:
        response, body = script.get("/")
        assert (response.status, body) == (200, b"Hello, World!\r\n")
        response, _ = script.get("/str")
        assert response.status == 500
        script.server.wait_for_log(r"WSGI response bodies must be bytes")
    assert script.code == 0 and "server returned" in script.server.stdout(), (
        "SIGTERM must make server() return"
    )


@pytest.mark.parametrize("capitalize", [True, False])
def test_header_names_are_capitalized_as_eventlet_does_unless_turned_off(capitalize):
    names = {}
    for backend in ("eventlet", "ferrogate"):
        with Script(backend, {"capitalize_response_headers": capitalize}) as script:
            response, body = script.get("/headers")
            assert (response.status, body) == (200, b"ok")
            shown = ("content-type", "etag", "x-object-meta-color")
            names[backend] = [name for name, _ in response.getheaders() if name.lower() in shown]
    assert names["ferrogate"] == names["eventlet"]
    expected = ["Content-Type", "Etag", "X-Object-Meta-Color"]
    assert names["ferrogate"] == (expected if capitalize else [n.lower() for n in expected])


def test_environ_keys_are_merged_into_every_request():
    options = {"environ": {"openstack.service": "compute", "x.n": 3}}
    with Script("ferrogate", options) as script:
        for key, value in [("openstack.service", "compute"), ("x.n", 3)]:
            response, body = script.get(f"/environ?{key}")
            assert json.loads(body) == value
        _, body = script.get("/environ?eventlet.minimum_write_chunk_size")
        assert json.loads(body) == 4096


def test_minimum_chunk_size_joins_small_yields():
    def chunk_sizes(script: Script) -> list[int]:
        raw = script.raw(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        body = raw.split(b"\r\n\r\n", 1)[1]
        sizes = []
        while True:
            line, body = body.split(b"\r\n", 1)
            size = int(line, 16)
            if size == 0:
                return sizes
            sizes.append(size)
            body = body[size + 2 :]

    with Script("ferrogate", {"minimum_chunk_size": 400}) as script:
        assert chunk_sizes(script) == [400, 400, 200]


@pytest.mark.parametrize("kind", ["object", "file"])
def test_the_access_log_goes_to_the_log_object(tmp_path, kind):
    path = tmp_path / "access.log"
    with Script("ferrogate", {"log": f"{kind}:{path}"}) as script:
        script.get("/logged-path")
        deadline = time.monotonic() + 5
        while "/logged-path" not in (path.read_text() if path.exists() else ""):
            assert time.monotonic() < deadline, "no access line reached the log object"
            time.sleep(0.05)
    line = path.read_text().strip().splitlines()[-1]
    assert line.startswith("127.0.0.1 ") and '"GET /logged-path HTTP/1.1" 200 ' in line


def read_access_line(path, marker: str) -> str:
    deadline = time.monotonic() + 5
    while marker not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, "no access line reached the log object"
        time.sleep(0.05)
    return [line for line in path.read_text().splitlines() if marker in line][-1]


def test_the_default_log_format_gives_eventlets_fields_in_its_order(tmp_path):
    shape = re.compile(r'^127\.0\.0\.1 - - \[[^\]]+\] "GET /shape HTTP/1\.1" 200 \d+ \d+\.\d+$')
    for backend in ("eventlet", "ferrogate"):
        path = tmp_path / f"{backend}.log"
        with Script(backend, {"log": f"object:{path}"}) as script:
            script.get("/shape")
            line = read_access_line(path, "/shape")
        assert shape.match(line), (backend, line)


def test_a_custom_log_format_is_translated_and_an_unknown_variable_refused(tmp_path):
    path = tmp_path / "custom.log"
    options = {"log": f"object:{path}", "log_format": "%(status_code)s %(request_line)s"}
    with Script("ferrogate", options) as script:
        script.get("/custom")
        assert read_access_line(path, "/custom") == "200 GET /custom HTTP/1.1"
    from ferrogate.wsgi import access_log_format

    with pytest.raises(ValueError, match=r"unknown variable %\(user\)s"):
        access_log_format("%(user)s")


def test_log_output_false_writes_no_access_line(tmp_path):
    path = tmp_path / "access.log"
    with Script("ferrogate", {"log": f"object:{path}", "log_output": False}) as script:
        script.get("/quiet")
        time.sleep(0.5)
    assert not path.exists() or "/quiet" not in path.read_text()


def test_keepalive_false_closes_after_each_response():
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for backend in ("eventlet", "ferrogate"):
        with Script(backend, {"keepalive": False}) as script:
            # Two requests sent at once: only the first is answered before the close.
            raw = script.raw(request * 2)
            assert raw.count(b"HTTP/1.1 200") == 1, (backend, raw)


def test_header_limits_as_eventlet_applies_them():
    # MAX_HEADER_LINE set before server() is honoured; the number of fields is not capped.
    limits = {"MAX_HEADER_LINE": 200}
    with Script("ferrogate", limits=limits) as script:
        at = "x" * (200 - len("X-Big: "))
        assert script.get("/", {"X-Big": at})[0].status == 200
        assert script.get("/", {"X-Big": at + "x"})[0].status == 431
        many = {f"X-Meta-{i}": "v" for i in range(150)}
        response, body = script.get("/fields", many)
        assert response.status == 200 and int(body) >= 150


def test_url_length_limit_gives_414():
    with Script("ferrogate", {"url_length_limit": 100}) as script:
        assert script.get("/" + "a" * 99)[0].status == 200
        assert script.get("/" + "a" * 200)[0].status == 414


def test_debug_puts_tracebacks_in_500s_only_when_asked():
    with Script("ferrogate") as script:
        response, body = script.get("/boom")
        assert response.status == 500 and b"boom 7c1e" not in body
    with Script("ferrogate", {"debug": True}) as script:
        response, body = script.get("/boom")
        assert response.status == 500 and b"boom 7c1e" in body


def test_server_event_receives_a_server_whose_stop_returns_from_server():
    with Script("ferrogate", {"server_event": True}) as script:
        assert script.get("/stop")[0].status == 200
        script.wait_for_stdout("server returned")
        assert "server_event Server" in script.server.stdout()


def test_a_custom_protocol_class_is_a_type_error():
    import ferrogate
    from ferrogate import wsgi

    class MyProtocol:
        pass

    with ferrogate.listen(("127.0.0.1", 0)) as sock:
        with pytest.raises(TypeError, match="custom protocol"):
            wsgi.server(sock, lambda e, s: [], protocol=MyProtocol)


def test_listen_gives_a_bound_listening_socket_like_eventlets():
    import ferrogate

    with ferrogate.listen(("127.0.0.1", 0), backlog=7) as sock:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        socket.create_connection(sock.getsockname(), timeout=5).close()
