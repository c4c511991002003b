"""Proxy headers (X-Forwarded-*, RFC 7239 Forwarded) from trusted and untrusted peers, as the
app sees them in its environ and as the access log shows the client (apps/forwarded_dump.py).

The test client connects from 127.0.0.1, which is trusted by default (--forwarded-allow-ips
127.0.0.1,::1,unix); binding the client to 127.0.0.5 makes it an untrusted peer there."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests import serving
from tests.rawhttp import RawConnection, build_request
from tests.serving import wait_for_text

pytestmark = pytest.mark.timeout(30)

REFUSED = r"\[WARNING\] (\d{3}) from 127\.0\.0\.1:(\d+): .+"


@pytest.fixture(scope="module")
def trusted(serve):
    with serve("forwarded_dump:app", "--access-log", "-") as s:
        yield s


@pytest.fixture(scope="module")
def untrusted(serve):
    flags = ["--forwarded-allow-ips", "192.0.2.1", "--access-log", "-"]
    with serve("forwarded_dump:app", *flags) as s:
        yield s


@pytest.fixture(scope="module")
def cidr(serve):
    with serve("forwarded_dump:app", "--forwarded-allow-ips", "127.0.0.0/8") as s:
        yield s


@pytest.fixture(scope="module")
def everyone(serve):
    with serve("forwarded_dump:app", "--forwarded-allow-ips", "*") as s:
        yield s


class SourceConnection(RawConnection):
    """A RawConnection whose client side is bound to ``source`` (a 127.x address)."""

    def __init__(self, address, source: str, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.bind((source, 0))
        self.sock.connect(address)
        self.buffer = b""


def connect(server, source: str | None = None) -> RawConnection:
    if source is None:
        return server.connect(timeout=10)
    return SourceConnection((server.host, server.port), source)


def environ(
    server,
    headers: dict[str, str] | None = None,
    source: str | None = None,
    host: str = "localhost",
) -> dict:
    """The proxy-related environ of one GET / with ``headers`` (and ``Host: host``)."""
    with connect(server, source) as conn:
        conn.send(build_request("GET", "/", headers={"Host": host, **(headers or {})}, close=True))
        resp = conn.read_response()
        port = conn.local_port
    assert resp.status == 200, (resp.status, resp.body)
    out = json.loads(resp.body)
    out["test.client_port"] = str(port)
    return out


def remote(env: dict) -> tuple[str, str]:
    return env["REMOTE_ADDR"], env["REMOTE_PORT"]


def assert_refused_400(server, raw: bytes) -> None:
    mark = server.log_mark()
    with server.connect(timeout=5) as conn:
        conn.send(raw)
        resp = conn.read_response()
        assert resp.status == 400, (resp.status, resp.body)
        assert conn.is_closed_by_peer(timeout=5), f"connection left open: {conn.buffer!r}"
    matches = server.wait_for_log(REFUSED, since=mark, timeout=5)
    assert matches[0].group(1) == "400"
    assert len(re.findall(REFUSED, server.log_since(mark))) == 1, server.log_since(mark)


# -- X-Forwarded-For ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("xff", "expected"),
    [
        pytest.param("203.0.113.9", "203.0.113.9", id="one-address"),
        pytest.param("203.0.113.9, 127.0.0.1", "203.0.113.9", id="trusted-proxy-on-the-right"),
        pytest.param("198.51.100.1, 203.0.113.9", "203.0.113.9", id="right-most-untrusted"),
        pytest.param("198.51.100.1,203.0.113.9,127.0.0.1", "203.0.113.9", id="no-spaces"),
        pytest.param("203.0.113.9, 127.0.0.8", "127.0.0.8", id="127.0.0.8-not-trusted"),
        pytest.param("::1, 127.0.0.1", "::1", id="all-trusted-left-most"),
        pytest.param("2001:db8::1", "2001:db8::1", id="ipv6"),
    ],
)
def test_x_forwarded_for_from_trusted_peer_gives_right_most_untrusted(trusted, xff, expected):
    env = environ(trusted, {"X-Forwarded-For": xff})
    assert remote(env) == (expected, ""), env
    assert env["HTTP_X_FORWARDED_FOR"] == xff  # the original header stays


def test_x_forwarded_for_split_over_two_lines_is_one_list(trusted):
    with trusted.connect(timeout=10) as conn:
        conn.send(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 198.51.100.1\r\n"
            b"X-Forwarded-For: 203.0.113.9, 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        env = json.loads(conn.read_response().body)
    assert env["REMOTE_ADDR"] == "203.0.113.9", env


@pytest.mark.parametrize(
    ("xff", "expected"),
    [
        pytest.param("203.0.113.9:4711", ("203.0.113.9", "4711"), id="ipv4-with-port"),
        pytest.param("[2001:db8::1]:4711", ("2001:db8::1", "4711"), id="ipv6-with-port"),
    ],
)
def test_x_forwarded_for_with_a_port_gives_remote_port(trusted, xff, expected):
    assert remote(environ(trusted, {"X-Forwarded-For": xff})) == expected


# -- X-Forwarded-Proto / -Ssl / -Host / -Port --------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Forwarded-Proto": "https"}, {"X-Forwarded-Ssl": "on"}],
    ids=["proto-https", "ssl-on"],
)
def test_https_from_trusted_proxy_sets_scheme_and_port_443(trusted, headers):
    env = environ(trusted, headers, host="example.com")
    assert env["wsgi.url_scheme"] == "https"
    assert (env["HTTP_HOST"], env["SERVER_PORT"]) == ("example.com", "443")


def test_https_keeps_the_port_the_host_names(trusted):
    env = environ(trusted, {"X-Forwarded-Proto": "https"}, host="example.com:8443")
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"]) == ("https", "8443")


def test_x_forwarded_proto_http_keeps_http(trusted):
    env = environ(trusted, {"X-Forwarded-Proto": "http"})
    assert env["wsgi.url_scheme"] == "http"


def test_conflicting_proto_and_ssl_from_trusted_proxy_is_400(trusted):
    raw = build_request("GET", "/", headers={"X-Forwarded-Proto": "http", "X-Forwarded-Ssl": "on"})
    assert_refused_400(trusted, raw)
    assert trusted.get("/").status == 200


def test_x_forwarded_host_with_port(trusted):
    env = environ(trusted, {"X-Forwarded-Host": "app.example:8080"})
    assert (env["HTTP_HOST"], env["SERVER_NAME"], env["SERVER_PORT"]) == (
        "app.example:8080", "app.example", "8080"
    )  # fmt: skip
    assert env["HTTP_X_FORWARDED_HOST"] == "app.example:8080"


def test_x_forwarded_host_without_port_and_https(trusted):
    env = environ(trusted, {"X-Forwarded-Host": "app.example", "X-Forwarded-Proto": "https"})
    assert (env["HTTP_HOST"], env["SERVER_NAME"], env["SERVER_PORT"]) == (
        "app.example", "app.example", "443"
    )  # fmt: skip
    assert env["wsgi.url_scheme"] == "https"


def test_x_forwarded_port_sets_server_port(trusted):
    env = environ(trusted, {"X-Forwarded-Port": "8443"}, host="example.com")
    assert (env["HTTP_HOST"], env["SERVER_PORT"]) == ("example.com", "8443")
    assert env["HTTP_X_FORWARDED_PORT"] == "8443"


def test_every_original_header_stays_in_environ(trusted):
    headers = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "app.example",
        "X-Forwarded-Port": "8443",
        "Forwarded": "for=192.0.2.60",
    }
    env = environ(trusted, headers)
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"
    assert env["HTTP_X_FORWARDED_PROTO"] == "https"
    assert env["HTTP_X_FORWARDED_HOST"] == "app.example"
    assert env["HTTP_X_FORWARDED_PORT"] == "8443"
    assert env["HTTP_FORWARDED"] == "for=192.0.2.60"


# -- Forwarded (RFC 7239) ----------------------------------------------------------------------


def test_forwarded_right_most_untrusted_element_gives_addr_proto_and_host(trusted):
    value = "for=192.0.2.60;proto=https;host=example.com, for=127.0.0.1"
    env = environ(trusted, {"Forwarded": value})
    assert remote(env) == ("192.0.2.60", "")
    assert env["wsgi.url_scheme"] == "https"
    assert (env["HTTP_HOST"], env["SERVER_NAME"]) == ("example.com", "example.com")
    assert env["HTTP_FORWARDED"] == value


def test_forwarded_picks_the_right_most_untrusted_of_several(trusted):
    value = "for=198.51.100.1;proto=http, for=192.0.2.60;proto=https;host=b.example, for=127.0.0.1"
    env = environ(trusted, {"Forwarded": value})
    assert remote(env)[0] == "192.0.2.60"
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "b.example")


def test_forwarded_quoted_ipv6_with_port_gives_remote_port(trusted):
    env = environ(trusted, {"Forwarded": 'for="[2001:db8::1]:4711"'})
    assert remote(env) == ("2001:db8::1", "4711")


def test_forwarded_takes_precedence_over_x_forwarded(trusted):
    headers = {
        "Forwarded": "for=192.0.2.60;proto=https;host=example.com",
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "other.example",
    }
    env = environ(trusted, headers)
    assert remote(env)[0] == "192.0.2.60"
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTP_HOST"] == "example.com"
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"


# -- untrusted peers ---------------------------------------------------------------------------


PROXY_HEADERS = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Ssl": "on",
    "X-Forwarded-Host": "app.example:8080",
    "X-Forwarded-Port": "8443",
    "Forwarded": "for=192.0.2.60;proto=https;host=example.com",
}


def assert_headers_change_nothing(server, source: str | None = None) -> None:
    plain = environ(server, source=source, host="localhost:1234")
    env = environ(server, PROXY_HEADERS, source=source, host="localhost:1234")
    assert env["REMOTE_ADDR"] == (source or "127.0.0.1")
    assert env["REMOTE_PORT"] == env["test.client_port"]
    assert env["wsgi.url_scheme"] == "http"
    assert env["HTTP_HOST"] == "localhost:1234"
    proxy_keys = {
        "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_SSL",
        "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "HTTP_FORWARDED",
    }  # fmt: skip
    assert set(env) - set(plain) == proxy_keys
    for key in set(plain) - {"REMOTE_PORT", "test.client_port"}:
        assert env[key] == plain[key], key
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"
    assert env["HTTP_FORWARDED"] == PROXY_HEADERS["Forwarded"]


def test_untrusted_peer_headers_are_plain_and_change_nothing(untrusted):
    # Even the Proto/Ssl conflict is only two plain headers from an untrusted peer.
    assert_headers_change_nothing(untrusted)


def test_untrusted_peer_conflicting_scheme_headers_are_served(untrusted):
    env = environ(untrusted, {"X-Forwarded-Proto": "http", "X-Forwarded-Ssl": "on"})
    assert env["wsgi.url_scheme"] == "http"


def test_default_trusts_only_127_0_0_1_not_other_loopback_addresses(trusted):
    assert_headers_change_nothing(trusted, source="127.0.0.5")


# -- CIDR and * --------------------------------------------------------------------------------


def test_cidr_trusts_every_peer_in_the_range(cidr):
    env = environ(cidr, {"X-Forwarded-For": "203.0.113.9"}, source="127.0.0.5")
    assert remote(env) == ("203.0.113.9", "")


def test_cidr_addresses_in_the_range_are_skipped_in_x_forwarded_for(cidr):
    env = environ(cidr, {"X-Forwarded-For": "203.0.113.9, 127.0.0.8, 127.0.0.9"})
    assert remote(env) == ("203.0.113.9", "")


def test_cidr_all_in_range_gives_the_left_most(cidr):
    env = environ(cidr, {"X-Forwarded-For": "127.0.0.9, 127.0.0.8"})
    assert remote(env)[0] == "127.0.0.9"


def test_cidr_does_not_trust_ipv6_loopback(cidr):
    # ::1 is not in 127.0.0.0/8 (the list replaces the default one).
    env = environ(cidr, {"X-Forwarded-For": "203.0.113.9, ::1"})
    assert remote(env)[0] == "::1"


def test_star_trusts_every_peer(everyone):
    env = environ(everyone, {"X-Forwarded-Proto": "https"}, source="127.0.0.5", host="example.com")
    assert (env["wsgi.url_scheme"], env["SERVER_PORT"]) == ("https", "443")


def test_star_trusts_every_address_so_the_left_most_is_the_client(everyone):
    env = environ(everyone, {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}, source="127.0.0.5")
    assert remote(env)[0] == "203.0.113.9"


# -- access log --------------------------------------------------------------------------------


def test_access_log_starts_with_the_resolved_client_address(trusted):
    with trusted.connect(timeout=10) as conn:
        conn.send(
            build_request(
                "GET", "/logged-xff", headers={"X-Forwarded-For": "203.0.113.9"}, close=True
            )
        )
        assert conn.read_response().status == 200
    (line,) = wait_for_text(trusted.stdout, r"^.*/logged-xff.*$")
    assert line.group(0).startswith("203.0.113.9 "), line.group(0)


def test_access_log_with_forwarded_shows_its_for(trusted):
    with trusted.connect(timeout=10) as conn:
        conn.send(
            build_request(
                "GET",
                "/logged-fwd",
                headers={"Forwarded": "for=192.0.2.60, for=127.0.0.1"},
                close=True,
            )
        )
        assert conn.read_response().status == 200
    (line,) = wait_for_text(trusted.stdout, r"^.*/logged-fwd.*$")
    assert line.group(0).startswith("192.0.2.60 "), line.group(0)


def test_access_log_of_untrusted_peer_shows_the_peer(untrusted):
    with untrusted.connect(timeout=10) as conn:
        conn.send(
            build_request(
                "GET", "/logged-untrusted", headers={"X-Forwarded-For": "203.0.113.9"}, close=True
            )
        )
        assert conn.read_response().status == 200
    (line,) = wait_for_text(untrusted.stdout, r"^.*/logged-untrusted.*$")
    assert line.group(0).startswith("127.0.0.1 "), line.group(0)


# -- more peers and forms ----------------------------------------------------------------------


def test_consistent_proto_and_ssl_is_https(trusted):
    env = environ(trusted, {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"})
    assert env["wsgi.url_scheme"] == "https"


def test_forwarded_parameter_names_are_case_insensitive(trusted):
    # RFC 7239 §4: parameter names are case-insensitive; a value may be a quoted-string.
    env = environ(trusted, {"Forwarded": 'For="192.0.2.60";Proto=https;Host="example.com"'})
    assert remote(env)[0] == "192.0.2.60"
    assert (env["wsgi.url_scheme"], env["HTTP_HOST"]) == ("https", "example.com")


def unix_environ(server, headers: dict[str, str]) -> dict:
    with server.connect(timeout=10) as conn:
        conn.send(build_request("GET", "/", headers=headers, close=True))
        resp = conn.read_response()
    assert resp.status == 200, (resp.status, resp.body)
    return json.loads(resp.body)


def test_unix_socket_peer_is_trusted_by_default(serve, tmp_path):
    with serve("forwarded_dump:app", binds=[f"unix:{tmp_path}/s.sock"]) as server:
        env = unix_environ(server, {"X-Forwarded-For": "203.0.113.9"})
    assert env["REMOTE_ADDR"] == "203.0.113.9", env


def test_unix_socket_peer_is_untrusted_without_unix_in_the_list(serve, tmp_path):
    flags = ("--forwarded-allow-ips", "127.0.0.1")
    with serve("forwarded_dump:app", *flags, binds=[f"unix:{tmp_path}/s.sock"]) as server:
        env = unix_environ(server, {"X-Forwarded-For": "203.0.113.9"})
    assert env.get("REMOTE_ADDR") != "203.0.113.9", env
    assert env["HTTP_X_FORWARDED_FOR"] == "203.0.113.9"


@pytest.mark.parametrize(
    ("flags", "trusted_peer"),
    [((), True), (("--forwarded-allow-ips", "::1/128"), True),
     (("--forwarded-allow-ips", "127.0.0.1"), False)],
    ids=["default-::1", "cidr-::1/128", "ipv4-only"],
)  # fmt: skip
def test_ipv6_loopback_peer(serve, flags, trusted_peer):
    port = serving.free_port()
    with serve("forwarded_dump:app", *flags, binds=[f"[::1]:{port}"]) as server:
        env = unix_environ(server, {"X-Forwarded-For": "203.0.113.9"})
    assert (env["REMOTE_ADDR"] == "203.0.113.9") is trusted_peer, env
    if not trusted_peer:
        assert env["REMOTE_ADDR"] == "::1"
