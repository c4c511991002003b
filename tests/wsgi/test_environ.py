"""PEP 3333 environ as the app sees it (apps/environ_dump.py answers with it as JSON)."""

from __future__ import annotations

import json
import re

import pytest

from tests.serving import LEAK_CANARY

CGI_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "RAW_URI",
    "REQUEST_URI",
)


@pytest.fixture(scope="module")
def server(serve):
    with serve("environ_dump:app") as s:
        yield s


@pytest.fixture(scope="module")
def prefixed(serve):
    with serve("environ_dump:app", "--root-path", "/prefix") as s:
        yield s


def environ_of(server, raw_request: bytes) -> dict:
    with server.connect() as conn:
        conn.send(raw_request)
        resp = conn.read_response()
    assert resp.status == 200, resp.text
    return json.loads(resp.body)


def get_environ(server, target: str = "/", headers: str = "", method: str = "GET") -> dict:
    host = f"127.0.0.1:{server.port}"
    raw = f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    return environ_of(server, raw.encode("latin-1"))


def test_required_cgi_keys_are_present_as_str(server):
    env = get_environ(server, "/a?b=c")
    for key in CGI_KEYS:
        assert key in env, key
        assert env["test.types"][key] == "str", key


def test_request_method_and_protocol(server):
    env = get_environ(server, "/", method="DELETE")
    assert env["REQUEST_METHOD"] == "DELETE"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_http10_request_has_http10_protocol(server):
    env = environ_of(server, b"GET / HTTP/1.0\r\n\r\n")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


def test_script_name_is_empty_without_root_path(server):
    env = get_environ(server, "/a/b")
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/a/b"


def test_root_path_becomes_script_name_and_is_stripped_from_path_info(prefixed):
    env = get_environ(prefixed, "/prefix/a/b?x=1")
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == "/a/b"
    assert env["QUERY_STRING"] == "x=1"


def test_root_path_itself_maps_to_empty_path_info(prefixed):
    env = get_environ(prefixed, "/prefix")
    assert env["SCRIPT_NAME"] == "/prefix"
    assert env["PATH_INFO"] == ""


def test_path_info_is_percent_decoded_as_latin1(server):
    env = get_environ(server, "/caf%C3%A9/a%20b/%E9")
    # UTF-8 bytes c3 a9 become two latin-1 characters; a lone %E9 becomes one.
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/a b/\u00e9"


def test_raw_uri_and_request_uri_are_the_undecoded_target(server):
    target = "/caf%C3%A9/a%20b?q=%20x&y=1"
    env = get_environ(server, target)
    assert env["RAW_URI"] == target
    assert env["REQUEST_URI"] == target


def test_each_request_on_a_connection_sees_its_own_path(server):
    # A thread keeps the last PATH_INFO and REQUEST_URI strings it made for the next request
    # with the same path: a path that changes, comes back, or is too long to keep is still
    # each request's own.
    long_path = "/" + "x" * 300
    paths = ["/a/b?q=1", "/a/b?q=1", "/c", "/a/b?q=1", long_path, long_path, "/", "/a/b?q=2"]
    host = f"127.0.0.1:{server.port}"
    with server.connect() as conn:
        for target in paths:
            conn.send(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            resp = conn.read_response()
            env = json.loads(resp.body)
            assert (env["PATH_INFO"], env["REQUEST_URI"]) == (target.split("?")[0], target)


def test_query_string_is_passed_undecoded(server):
    env = get_environ(server, "/p?a=1&b=%20x&c=%2F")
    assert env["QUERY_STRING"] == "a=1&b=%20x&c=%2F"


def test_query_string_is_empty_str_without_query(server):
    env = get_environ(server, "/p")
    assert env["QUERY_STRING"] == ""


def test_content_type_and_length_absent_when_not_sent(server):
    env = get_environ(server, "/")
    assert "CONTENT_TYPE" not in env
    assert "CONTENT_LENGTH" not in env
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_content_type_and_length_present_when_sent_and_length_is_str(server):
    raw = (
        b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 7\r\nConnection: close\r\n\r\na=1&b=2"
    )
    env = environ_of(server, raw)
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "7"
    assert env["test.types"]["CONTENT_LENGTH"] == "str"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env


def test_server_name_and_port(server):
    env = get_environ(server, "/")
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)


def test_remote_addr_and_port_are_the_client_socket(server):
    with server.connect() as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        env = json.loads(conn.read_response().body)
        assert env["REMOTE_ADDR"] == "127.0.0.1"
        assert env["REMOTE_PORT"] == str(conn.local_port)


def test_headers_become_http_variables(server):
    env = get_environ(server, "/", "X-Custom-Thing: value 1\r\nAccept: text/html\r\n")
    assert env["HTTP_X_CUSTOM_THING"] == "value 1"
    assert env["HTTP_ACCEPT"] == "text/html"
    assert env["HTTP_HOST"] == f"127.0.0.1:{server.port}"


def test_repeated_headers_are_comma_joined(server):
    env = get_environ(server, "/", "X-Multi: a\r\nX-Other: z\r\nX-Multi: b\r\nX-Multi: c\r\n")
    assert re.split(r",\s*", env["HTTP_X_MULTI"]) == ["a", "b", "c"]


def test_header_names_with_underscore_are_dropped(server):
    env = get_environ(server, "/", "X_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 1.2.3.4\r\n")
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    env = get_environ(server, "/", "X_Forwarded_For: 6.6.6.6\r\n")
    assert "HTTP_X_FORWARDED_FOR" not in env
    assert "6.6.6.6" not in json.dumps(env)


def test_header_values_reach_the_app_as_latin1_str(server):
    raw = (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Latin: caf\xe9\r\nX-Utf8: caf\xc3\xa9\r\n"
        b"Connection: close\r\n\r\n"
    )
    env = environ_of(server, raw)
    assert env["HTTP_X_LATIN"] == "caf\u00e9"
    assert env["HTTP_X_UTF8"] == "caf\u00c3\u00a9"


def test_wsgi_keys_have_pep3333_values(server):
    env = get_environ(server, "/")
    assert env["wsgi.version"] == [1, 0] and env["test.types"]["wsgi.version"] == "tuple"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.input_terminated"):
        assert env["test.types"][key] == "bool", key
    assert env["test.checks"]["file_wrapper_is_ferrogate"] is True


def test_wsgi_input_and_errors_are_file_like(server):
    checks = get_environ(server, "/")["test.checks"]
    assert set(checks["input_methods"]) >= {"read", "readline", "readlines", "__iter__"}
    assert set(checks["errors_methods"]) >= {"write", "writelines", "flush"}


def test_single_worker_default_is_not_multiprocess(server):
    env = get_environ(server, "/")
    assert env["wsgi.multiprocess"] is False


def test_os_environ_does_not_leak_into_environ(server):
    env = get_environ(server, "/")
    assert LEAK_CANARY not in json.dumps(env)
    for key in ("LEAK_CANARY_VAR", "PATH", "HOME", "PYTHONUNBUFFERED", "PWD"):
        assert key not in env, key
