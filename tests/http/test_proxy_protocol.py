"""--proxy-protocol: PROXY protocol v1 and v2 preambles set REMOTE_ADDR / REMOTE_PORT (and the
server address); a missing or malformed preamble, or one from an untrusted peer, gets the
connection closed without a response and one warning. Then a real nginx (stream module,
`proxy_protocol on`) in front of ferrogate (apps/forwarded_dump.py)."""

from __future__ import annotations

import json
import re
import socket
import struct
import time

import pytest

from tests.nginx import running_nginx
from tests.rawhttp import RawConnection
from tests.serving import free_port

pytestmark = pytest.mark.timeout(30)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: A request without Host, so SERVER_NAME / SERVER_PORT come from the server address.
NO_HOST = b"GET /pp HTTP/1.0\r\n\r\n"
WITH_HOST = b"GET /pp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def server(serve):
    with serve("forwarded_dump:app", "--proxy-protocol") as s:
        yield s


@pytest.fixture(scope="module")
def untrusted(serve):
    with serve("forwarded_dump:app", "--proxy-protocol", "--forwarded-allow-ips", "192.0.2.1") as s:
        yield s


def v1(proto: str, src: str, dst: str, sport: int, dport: int) -> bytes:
    return f"PROXY {proto} {src} {dst} {sport} {dport}\r\n".encode()


def v2(
    src: str = "203.0.113.7",
    dst: str = "198.51.100.20",
    sport: int = 56324,
    dport: int = 8080,
    command: int = 0x21,
    family: int = 0x11,
    tlvs: bytes = b"",
    length: int | None = None,
) -> bytes:
    """A PROXY v2 header: signature, version/command, family, length, addresses, ports."""
    if family == 0x11:  # TCP over IPv4
        addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    elif family == 0x21:  # TCP over IPv6
        addresses = (
            socket.inet_pton(socket.AF_INET6, src)
            + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", sport, dport)
        )
    else:
        addresses = b""
    payload = addresses + tlvs
    size = len(payload) if length is None else length
    return V2_SIGNATURE + bytes([command, family]) + struct.pack("!H", size) + payload


def exchange(server, *parts: bytes, pause: float = 0.0, source: str | None = None):
    """Send ``parts`` (``pause`` s apart), read one response, return (environ, client port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    if source:
        sock.bind((source, 0))
    sock.connect((server.host, server.port))
    conn = RawConnection.__new__(RawConnection)
    conn.sock, conn.buffer = sock, b""
    with conn:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            conn.send(part)
        resp = conn.read_response()
        assert resp.status == 200, (resp.status, resp.body)
        return json.loads(resp.body), conn.local_port


def assert_dropped(server, raw: bytes) -> None:
    """``raw`` gets the connection closed with no response, and one WARNING line."""
    mark = server.log_mark()
    with server.connect(timeout=5) as conn:
        port = conn.local_port
        try:
            conn.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            data = conn.read_until_close()
        except ConnectionResetError:
            data = b""
        assert data == b"", f"a response to a connection without a valid preamble: {data!r}"
    # Only this connection's lines: the readiness probe of the fixture may log one too.
    line = rf"\[WARNING\] .*127\.0\.0\.1:{port}\b.*"
    server.wait_for_log(line, since=mark, timeout=5)
    time.sleep(0.3)
    logged = server.log_since(mark)
    assert len(re.findall(rf"127\.0\.0\.1:{port}\b", logged)) == 1, logged
    assert "Traceback" not in logged, logged
    assert "panick" not in server.log().lower()


# -- v1 ----------------------------------------------------------------------------------------


def test_v1_tcp4_gives_remote_and_server_address(server):
    env, _ = exchange(server, v1("TCP4", "203.0.113.7", "198.51.100.20", 56324, 8080) + NO_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("198.51.100.20", "8080")


def test_v1_example_from_the_spec(server):
    env, _ = exchange(server, b"PROXY TCP4 203.0.113.7 127.0.0.1 56324 8000\r\n" + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")
    assert env["HTTP_HOST"] == "x"


def test_v1_tcp6_gives_remote_address(server):
    env, _ = exchange(server, v1("TCP6", "2001:db8::7", "2001:db8::1", 56324, 443) + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("2001:db8::7", "56324")


def test_v1_unknown_keeps_the_real_peer(server):
    env, port = exchange(server, b"PROXY UNKNOWN\r\n" + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(port))


def test_v1_preamble_sent_apart_from_the_request(server):
    env, _ = exchange(
        server, b"PROXY TCP4 203.0.113.7 ", b"127.0.0.1 56324 8000\r\n", WITH_HOST, pause=0.2
    )
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")


def test_v1_preamble_holds_for_every_request_on_the_connection(server):
    with server.connect(timeout=10) as conn:
        conn.send(v1("TCP4", "203.0.113.7", "127.0.0.1", 56324, 8000))
        conn.send(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        first = json.loads(conn.read_response().body)
        conn.send(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        second = json.loads(conn.read_response().body)
    assert first["REMOTE_ADDR"] == second["REMOTE_ADDR"] == "203.0.113.7"
    assert first["REMOTE_PORT"] == second["REMOTE_PORT"] == "56324"


# -- v2 ----------------------------------------------------------------------------------------


def test_v2_tcp_over_ipv4_gives_remote_and_server_address(server):
    env, _ = exchange(server, v2() + NO_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("198.51.100.20", "8080")


def test_v2_tcp_over_ipv6_gives_remote_address(server):
    env, _ = exchange(server, v2("2001:db8::7", "2001:db8::1", 4711, 443, family=0x21) + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("2001:db8::7", "4711")


def test_v2_with_tlvs_skips_them(server):
    noop = b"\x04" + struct.pack("!H", 4) + b"\x00" * 4  # PP2_TYPE_NOOP
    authority = b"\x02" + struct.pack("!H", 11) + b"example.com"  # PP2_TYPE_AUTHORITY
    env, _ = exchange(server, v2(tlvs=noop + authority) + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")


def test_v2_split_in_the_middle_of_the_header(server):
    raw = v2() + WITH_HOST
    env, _ = exchange(server, raw[:7], raw[7:20], raw[20:], pause=0.2)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("203.0.113.7", "56324")


def test_v2_local_command_keeps_the_real_peer(server):
    env, port = exchange(server, v2(command=0x20, family=0x00) + WITH_HOST)
    assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.1", str(port))


# -- refused -----------------------------------------------------------------------------------


DROPPED = [
    pytest.param(WITH_HOST, id="missing-preamble"),
    pytest.param(b"PROXY TCP4 203.0.113.7 127.0.0.1 56324\r\n" + WITH_HOST, id="v1-missing-port"),
    pytest.param(v1("TCP4", "203.0.113.300", "127.0.0.1", 1, 2) + WITH_HOST, id="v1-bad-ipv4"),
    pytest.param(v1("TCP4", "2001:db8::7", "127.0.0.1", 1, 2) + WITH_HOST, id="v1-ipv6-in-tcp4"),
    pytest.param(v1("TCP4", "203.0.113.7", "127.0.0.1", 65536, 2) + WITH_HOST, id="v1-port-65536"),
    pytest.param(v1("TCP5", "203.0.113.7", "127.0.0.1", 1, 2) + WITH_HOST, id="v1-tcp5"),
    pytest.param(b"proxy TCP4 203.0.113.7 127.0.0.1 1 2\r\n" + WITH_HOST, id="v1-lowercase"),
    pytest.param(b"PROXY TCP4 203.0.113.7 127.0.0.1 1 2\n" + WITH_HOST, id="v1-bare-lf"),
    pytest.param(b"PROXY TCP4 " + b"1" * 120 + b"\r\n" + WITH_HOST, id="v1-over-107-bytes"),
    pytest.param(v2()[:12] + b"\x11" + v2()[13:] + WITH_HOST, id="v2-version-1"),
    pytest.param(v2(command=0x22) + WITH_HOST, id="v2-unknown-command"),
    pytest.param(v2(length=4) + WITH_HOST, id="v2-length-shorter-than-addresses"),
    pytest.param(
        b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\x00" * 12 + WITH_HOST,
        id="v2-bad-signature",
    ),
]


@pytest.mark.parametrize("raw", DROPPED)
def test_missing_or_malformed_preamble_is_dropped_and_logged(server, raw):
    assert_dropped(server, raw)
    env, _ = exchange(server, v2() + WITH_HOST)  # and the next connection is served
    assert env["REMOTE_ADDR"] == "203.0.113.7"


@pytest.mark.parametrize(
    "raw",
    [v1("TCP4", "203.0.113.7", "127.0.0.1", 56324, 8000) + WITH_HOST, v2() + WITH_HOST],
    ids=["v1", "v2"],
)
def test_preamble_from_an_untrusted_peer_is_dropped_and_logged(untrusted, raw):
    assert_dropped(untrusted, raw)


# -- a real nginx in front ---------------------------------------------------------------------


@pytest.fixture
def nginx(tmp_path, server):
    """nginx's stream proxy with `proxy_protocol on` on a free port, in front of ``server``."""
    port = free_port()
    stream = (
        "stream {\n"
        f"    server {{ listen 127.0.0.1:{port}; proxy_pass 127.0.0.1:{server.port};"
        " proxy_protocol on; }\n"
        "}\n"
    )
    with running_nginx(tmp_path, port, stream, stream=True):
        yield port


def test_nginx_stream_proxy_protocol_gives_the_client_address(server, nginx):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.bind(("127.0.0.5", 0))
    sock.connect(("127.0.0.1", nginx))
    conn = RawConnection.__new__(RawConnection)
    conn.sock, conn.buffer = sock, b""
    with conn:
        conn.send(b"GET /via-nginx HTTP/1.1\r\nHost: x\r\n\r\n")
        first = conn.read_response()
        conn.send(NO_HOST)
        second = conn.read_response()
        port = conn.local_port
    assert first.status == 200 and second.status == 200, (first, second)
    for env in (json.loads(first.body), json.loads(second.body)):
        assert (env["REMOTE_ADDR"], env["REMOTE_PORT"]) == ("127.0.0.5", str(port)), env
    # The destination nginx reports is its own listening address.
    assert json.loads(second.body)["SERVER_PORT"] == str(nginx)


@pytest.mark.parametrize(
    "partial",
    [b"", b"PROXY TCP4 203.0.113.7 ", v2()[:10], v2()[:20]],
    ids=["nothing", "half-v1", "half-v2-signature", "half-v2-addresses"],
)
def test_preamble_that_never_completes_is_closed_in_time(serve, partial):
    # A slowloris on the preamble: the connection must not be held past the head timeouts.
    flags = ("--proxy-protocol", "--header-timeout", "2", "--keep-alive", "2")
    with serve("forwarded_dump:app", *flags) as server:
        with server.connect(timeout=10) as conn:
            if partial:
                conn.send(partial)
            start = time.monotonic()
            try:
                data = conn.read_until_close()
            except ConnectionResetError:
                data = b""
            took = time.monotonic() - start
        assert data == b"", f"a response to an incomplete preamble: {data!r}"
        assert took <= 2 * 1.5 + 1.5, f"held {took:.1f}s"
