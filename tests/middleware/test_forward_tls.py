"""Forward to https upstreams: ferrogate itself serves the upstream on an ``https://`` bind
with a certificate from a CA made for the test. The certificate is checked by default (the
system's CA store, which does not know the test CA), or against ``ca_certs``; a failed check
is a 502 with one log line naming the verifier's reason; ``verify=False`` is the logged
opt-out. The same through the lifted layer, --no-native-middleware and wsgiref."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import entry_points
from wsgiref.simple_server import make_server

import pytest
import requests

from tests import serving
from tests.middleware.forward_peers import PROXY_WAYS, ferrogate_upstream, proxy
from tests.tls.certs import Authority


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> Authority:
    return Authority(tmp_path_factory.mktemp("forward-pki"), "Forward Test CA")


def https_upstream(ca: Authority, name: str, hosts: tuple[str, ...] = ("localhost",)):
    """tests/apps/upstream.py on ``https://127.0.0.1:PORT`` with a certificate for
    ``hosts``; its URL names ``localhost`` (what the proxy must send as SNI and check). It
    trusts no proxy, so its environ shows the headers as received."""
    issued = ca.issue(f"upstream-{name}", hosts=hosts)
    port = serving.free_port()
    flags = ("--certfile", str(issued.cert), "--keyfile", str(issued.key),
             "--forwarded-allow-ips", "10.9.9.9")
    return port, ferrogate_upstream(name, *flags, bind=f"https://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def secure(ca):
    port, server = https_upstream(ca, "secure")
    with server:
        yield f"https://localhost:{port}"


@pytest.fixture(scope="module")
def wrong_host(ca):
    port, server = https_upstream(ca, "wrong", hosts=("other.example",))
    with server:
        yield f"https://localhost:{port}"


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_https_upstream_verified_with_ca_certs(way, secure, ca):
    with proxy(way, [secure], strip_prefix=True, ca_certs=str(ca.path)) as p:
        for _ in range(3):  # the second and third reuse the pooled TLS connection
            got = requests.get(p.url("/proxy/echo?x=1"))
            assert got.status_code == 200, got.text
            echo = got.json()
            assert (echo["name"], echo["path"], echo["query"]) == ("secure", "/echo", "x=1")
            # SNI is the upstream's host name; Host is rewritten as for http upstreams.
            assert echo["sni"] == "localhost"
            assert echo["headers"]["host"] == secure.removeprefix("https://")
        upload = requests.post(p.url("/proxy/echo"), data=b"y" * 200_000).json()
        assert upload["length"] == 200_000


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_unknown_ca_is_refused_with_502_and_one_line_naming_it(way, secure):
    # No ca_certs: the system's store, which does not hold the test CA.
    with proxy(way, [secure], strip_prefix=True) as p:
        got = requests.get(p.url("/proxy/echo"))
        assert (got.status_code, got.text) == (502, "502 Bad Gateway\n")
        if way != "wsgiref":
            lines = serving.wait_for_text(
                p.log, r"Forward: GET /echo: 502: .*invalid peer certificate: UnknownIssuer"
            )
            assert len(lines) == 1


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_certificate_for_another_host_is_refused(way, wrong_host, ca):
    with proxy(way, [wrong_host], strip_prefix=True, ca_certs=str(ca.path)) as p:
        got = requests.get(p.url("/proxy/echo"))
        assert got.status_code == 502
        if way != "wsgiref":
            lines = serving.wait_for_text(
                p.log, r"Forward: GET /echo: 502: .*certificate not valid for name \"localhost\""
            )
            assert len(lines) == 1


@pytest.mark.parametrize("way", PROXY_WAYS)
def test_verify_false_is_an_explicit_logged_opt_out(way, wrong_host):
    with proxy(way, [wrong_host], strip_prefix=True, verify=False) as p:
        got = requests.get(p.url("/proxy/echo"))
        assert got.status_code == 200 and got.json()["name"] == "wrong"
        if way != "wsgiref":
            serving.wait_for_text(p.log, r"Forward: verify=False: the certificates of https://")


def test_forward_flag_takes_ca_certs(secure, ca):
    spec = f"/s={secure},strip_prefix=true,ca_certs={ca.path}"
    with serving.serve("hello:app", "--forward", spec) as server:
        assert requests.get(server.url("/s/echo")).json()["name"] == "secure"


def test_forward_table_takes_ca_certs_and_verify(secure, wrong_host, ca, tmp_path):
    (tmp_path / "ferrogate.toml").write_text(
        f'[[forward]]\nprefix = "/a"\nupstreams = ["{secure}"]\nstrip_prefix = true\n'
        f'ca_certs = "{ca.path}"\n\n'
        f'[[forward]]\nprefix = "/b"\nupstreams = ["{wrong_host}"]\nverify = false\n'
    )
    with serving.serve("hello:app", "--config", str(tmp_path / "ferrogate.toml")) as server:
        assert requests.get(server.url("/a/echo")).json()["name"] == "secure"
        assert requests.get(server.url("/b/echo")).json()["name"] == "wrong"


def test_paste_factory_takes_ca_certs(secure, ca):
    (point,) = entry_points(group="paste.app_factory", name="forward")
    app = point.load()({}, upstreams=secure, ca_certs=str(ca.path))
    httpd = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        got = requests.get(f"http://127.0.0.1:{httpd.server_address[1]}/echo")
        assert got.json()["name"] == "secure"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_unreadable_ca_certs_stops_the_start_naming_the_file(tmp_path):
    missing = tmp_path / "nope.pem"
    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "hello:app", "--bind",
         f"127.0.0.1:{serving.free_port()}", "--forward",
         f"/s=https://localhost:1,ca_certs={missing}"],
        cwd=serving.APPS_DIR, env=serving.server_env(), capture_output=True, text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert f"ca_certs {missing}" in result.stderr, result.stderr
