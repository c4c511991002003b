"""TLS end to end: real clients that verify the certificates made for the test (requests,
httpx, http.client, curl --cacert, openssl s_client), mod_ssl's environ keys, mTLS, protocol
versions and ALPN, plain HTTP sent to the TLS port, a stalled handshake, and plain and TLS
listeners side by side."""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest
import requests
from cryptography import x509

from tests.serving import free_port, serve
from tests.tls.conftest import client_context, serve_tls, tls_flags

CURL = shutil.which("curl")
OPENSSL = shutil.which("openssl")


@pytest.fixture(scope="module")
def optional_mtls(pki):
    """Client certificates asked for, verified when given, not required."""
    flags = ("--ca-certs", str(pki.ca.path), "--cert-reqs", "optional")
    with serve_tls(pki.server, *flags) as server:
        yield server


def environ_over(server, pki, cert=None) -> dict:
    response = requests.get(
        server.https + "/", verify=str(pki.ca.path), cert=cert and (str(cert.cert), str(cert.key))
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_requests_verifies_the_server_and_the_app_sees_mod_ssl_keys(optional_mtls, pki):
    environ = environ_over(optional_mtls, pki)
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["HTTPS"] == "on"
    assert environ["SSL_PROTOCOL"] == "TLSv1.3"
    assert environ["SSL_CIPHER"].startswith("TLS_") and "13" not in environ["SSL_CIPHER"]
    assert environ["SSL_TLS_SNI"] == "localhost"
    assert environ["SSL_CLIENT_VERIFY"] == "NONE"
    assert environ["SSL_CLIENT_CERT"] is None


def test_a_client_certificate_is_verified_and_described(optional_mtls, pki):
    environ = environ_over(optional_mtls, pki, cert=pki.client)
    assert environ["SSL_CLIENT_VERIFY"] == "SUCCESS"
    assert environ["SSL_CLIENT_S_DN"] == "CN=alice,O=Ferrogate Tests,C=FR"
    assert environ["SSL_CLIENT_I_DN"] == "CN=Ferrogate Test CA,O=Ferrogate Tests,C=FR"
    sent = pki.client.cert.read_text().strip()
    assert environ["SSL_CLIENT_CERT"].strip() == sent
    cert = x509.load_pem_x509_certificate(sent.encode())
    # mod_ssl writes the serial's bytes in hex: a leading zero nibble stays (0x065C...).
    serial = environ["SSL_CLIENT_M_SERIAL"]
    assert int(serial, 16) == cert.serial_number and len(serial) % 2 == 0, serial
    # OpenSSL's form, which mod_ssl passes on: "Dec  5 19:41:33 2026 GMT".
    start = cert.not_valid_before_utc
    assert environ["SSL_CLIENT_V_START"] == (
        f"{start:%b} {start.day:2} {start:%H:%M:%S} {start.year} GMT"
    )
    assert environ["SSL_CLIENT_V_END"].endswith(f"{cert.not_valid_after_utc.year} GMT")


def test_a_client_certificate_from_an_unknown_ca_is_refused(optional_mtls, pki):
    with pytest.raises(requests.exceptions.SSLError):
        environ_over(optional_mtls, pki, cert=pki.stranger)
    # The refusal is logged, and the server goes on serving.
    optional_mtls.wait_for_log("TLS handshake failed")
    assert environ_over(optional_mtls, pki)["HTTPS"] == "on"


def test_required_client_certificates(pki):
    flags = ("--ca-certs", str(pki.ca.path), "--cert-reqs", "required")
    with serve_tls(pki.server, *flags) as server:
        # TLS 1.3: the server's refusal comes as an alert after the client's Finished, so
        # the client sees it on its first read, not in its handshake.
        with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
            environ_over(server, pki)
        assert environ_over(server, pki, cert=pki.client)["SSL_CLIENT_VERIFY"] == "SUCCESS"
        # The README's mTLS command.
        assert CURL, "curl is needed (Debian package curl)"
        base = [CURL, "-sS", "--cacert", str(pki.ca.path), server.https + "/"]
        with_cert = ["--cert", str(pki.client.cert), "--key", str(pki.client.key)]
        out = subprocess.run(base + with_cert, capture_output=True, check=True)
        assert json.loads(out.stdout)["SSL_CLIENT_S_DN"] == "CN=alice,O=Ferrogate Tests,C=FR"
        assert subprocess.run(base, capture_output=True).returncode != 0


def test_without_cert_reqs_no_client_certificate_is_asked_for(pki):
    with serve_tls(pki.server) as server:
        environ = environ_over(server, pki, cert=pki.client)
        assert environ["SSL_CLIENT_VERIFY"] == "NONE"
        assert environ["SSL_CLIENT_CERT"] is None


def test_httpx_keep_alive_uploads_streams_and_files(optional_mtls, pki):
    big = bytes(range(256)) * 12288  # 3 MiB
    with httpx.Client(verify=client_context(pki), http2=False) as client:
        ports = set()
        for _ in range(3):
            response = client.get(optional_mtls.https + "/pid")
            assert response.status_code == 200
        echoed = client.post(optional_mtls.https + "/echo", content=big)
        assert echoed.status_code == 200 and echoed.content == big
        streamed = client.get(optional_mtls.https + "/stream")
        assert streamed.text == "".join(f"chunk {i}\n" for i in range(100))
        file = client.get(optional_mtls.https + "/file")
        assert file.content == bytes(range(256)) * 4096
        # Every request above went over one connection (keep-alive over TLS).
        ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
        assert len(ports) == 1


def test_a_chunked_upload_and_100_continue_over_tls(optional_mtls, pki):
    connection = http.client.HTTPSConnection(
        "localhost", int(optional_mtls.https.rsplit(":", 1)[1]), context=client_context(pki)
    )
    connection.putrequest("POST", "/echo")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    for piece in (b"hello ", b"over ", b"tls"):
        connection.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    connection.send(b"0\r\n\r\n")
    response = connection.getresponse()
    assert response.read() == b"hello over tls"
    connection.close()


def test_curl_verifies_with_cacert_and_can_force_tls_1_2(optional_mtls, pki):
    assert CURL, "curl is needed (Debian package curl)"
    url = optional_mtls.https + "/"
    out = subprocess.run(
        [CURL, "-sS", "--cacert", str(pki.ca.path), url], capture_output=True, check=True
    )
    assert json.loads(out.stdout)["SSL_PROTOCOL"] == "TLSv1.3"
    out = subprocess.run(
        [CURL, "-sS", "--cacert", str(pki.ca.path), "--tlsv1.2", "--tls-max", "1.2", url],
        capture_output=True,
        check=True,
    )
    environ = json.loads(out.stdout)
    assert environ["SSL_PROTOCOL"] == "TLSv1.2"
    assert environ["SSL_CIPHER"].startswith("TLS_ECDHE_")
    # Without the CA, curl refuses the server (the certificate is not from a public CA).
    refused = subprocess.run([CURL, "-sS", url], capture_output=True)
    assert refused.returncode == 60, refused.stderr


def s_client(server, *args: str) -> subprocess.CompletedProcess:
    assert OPENSSL, "openssl is needed (Debian package openssl)"
    host_port = server.https.removeprefix("https://")
    return subprocess.run(
        [OPENSSL, "s_client", "-connect", host_port, "-servername", "localhost", *args],
        input=b"",
        capture_output=True,
        timeout=20,
    )


def test_openssl_s_client_sees_alpn_and_no_tls_1_1(optional_mtls, pki):
    done = s_client(optional_mtls, "-CAfile", str(pki.ca.path), "-alpn", "h2,http/1.1")
    out = done.stdout.decode()
    assert "ALPN protocol: h2" in out, out  # --http auto: h2 first
    assert "Verify return code: 0 (ok)" in out, out
    older = s_client(optional_mtls, "-CAfile", str(pki.ca.path), "-alpn", "http/1.1")
    assert "ALPN protocol: http/1.1" in older.stdout.decode()
    old = s_client(optional_mtls, "-tls1_1")
    assert old.returncode != 0
    assert "Cipher is (NONE)" in old.stdout.decode() or b"alert" in old.stderr


def test_ssl_min_version_1_3_refuses_tls_1_2(pki):
    with serve_tls(pki.server, "--ssl-min-version", "1.3") as server:
        assert s_client(server, "-tls1_2").returncode != 0
        assert s_client(server, "-tls1_3", "-CAfile", str(pki.ca.path)).returncode == 0


def test_ciphers_narrow_the_suites(pki):
    flags = ("--ciphers", "TLS13_CHACHA20_POLY1305_SHA256:TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384")
    with serve_tls(pki.server, *flags) as server:
        assert environ_over(server, pki)["SSL_CIPHER"] == "TLS_CHACHA20_POLY1305_SHA256"


def test_clients_refuse_an_expired_certificate_and_one_for_another_host(pki):
    with serve_tls(pki.expired) as server:
        with pytest.raises(requests.exceptions.SSLError, match="expired"):
            environ_over(server, pki)
    with serve_tls(pki.other_host) as server:
        with pytest.raises(requests.exceptions.SSLError, match="(?i)hostname|match"):
            environ_over(server, pki)
        refused = subprocess.run(
            [CURL or "curl", "-sS", "--cacert", str(pki.ca.path), server.https + "/"],
            capture_output=True,
        )
        assert refused.returncode == 60, refused.stderr


@pytest.mark.parametrize(
    ("key_type", "key_format"),
    [("rsa", "traditional"), ("rsa", "pkcs8"), ("ec", "traditional"), ("ed25519", "pkcs8")],
)
def test_every_key_type_and_pem_form_is_served(pki, key_type, key_format):
    issued = pki.ca.issue(f"{key_type}-{key_format}", key_type=key_type, key_format=key_format)
    with serve_tls(issued) as server:
        assert environ_over(server, pki)["HTTPS"] == "on"


def test_plain_http_to_the_tls_port_gets_a_400_and_a_close(optional_mtls):
    with optional_mtls.connect(timeout=5) as conn:
        conn.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = conn.read_response()
        assert response.status == 400
        assert b"HTTPS" in response.body
        assert conn.sock.recv(1) == b""


@pytest.mark.timeout(20)
def test_a_stalled_handshake_is_cut_off_by_the_header_timeout(pki):
    with serve_tls(pki.server, "--header-timeout", "1", "--keep-alive", "30") as server:
        for opening in (b"", b"\x16\x03\x01\x02\x00\x01"):
            with server.connect(timeout=8) as conn:
                started = time.monotonic()
                conn.send(opening)
                assert conn.sock.recv(1) == b""
                assert 0.8 < time.monotonic() - started < 4
        server.wait_for_log(r"TLS handshake not done within 1s \(--header-timeout\)")


def test_plain_and_tls_listeners_side_by_side(pki):
    plain, tls = free_port(), free_port()
    binds = [f"http://127.0.0.1:{plain}", f"127.0.0.1:{tls}"]
    with serve("tls_app:app", *tls_flags(pki.server), binds=binds) as server:
        over_http = requests.get(f"http://127.0.0.1:{plain}/").json()
        assert over_http["wsgi.url_scheme"] == "http" and over_http["HTTPS"] is None
        over_tls = requests.get(f"https://localhost:{tls}/", verify=str(pki.ca.path)).json()
        assert over_tls["wsgi.url_scheme"] == "https"
        assert f"Listening at https://127.0.0.1:{tls}" in server.log()


def test_the_tls_socket_is_a_real_tls_server(optional_mtls, pki):
    """The standard library's client, straight on a socket: TLS 1.3 and the chain sent."""
    port = int(optional_mtls.https.rsplit(":", 1)[1])
    context = client_context(pki)
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.selected_alpn_protocol() is None
            tls.sendall(b"GET /pid HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    with pytest.raises(ssl.SSLCertVerificationError):
        with socket.create_connection(("127.0.0.1", port)) as raw:
            ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_sessions_resume_with_a_ticket(pki):
    """TLS 1.3 session tickets: a second connection offering the first one's session skips the
    full handshake (what a browser opening several connections does)."""
    with serve_tls(pki.server) as server:
        port = int(server.https.rsplit(":", 1)[1])
        context = client_context(pki)

        def fetch(session=None):
            # The session is taken while the connection is open: OpenSSL does not offer again
            # a session whose connection ended in an EOF.
            with socket.create_connection(("127.0.0.1", port)) as raw:
                with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
                    tls.sendall(b"GET /pid HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    data = b""
                    while not re.search(rb"\r\n\r\n\d+$", data):
                        data += tls.recv(65536)
                    return tls.session, tls.session_reused

        session, reused = fetch()
        assert session.has_ticket and not reused
        assert all(fetch(session)[1] for _ in range(5))


def test_100_continue_reaches_the_client_over_tls(optional_mtls, pki):
    """The interim response is flushed through rustls while the app waits for the body."""
    port = int(optional_mtls.https.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(
                b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            assert tls.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
            tls.sendall(b"hello")
            data = b""
            while not data.endswith(b"hello"):
                data += tls.recv(65536)
            assert data.startswith(b"HTTP/1.1 200 OK\r\n")
