"""``egg:ferrogate#proxyheaders`` (``ferrogate.middleware.ProxyHeaders``): the same request
gives the same environ under wsgiref (the WSGI object), under ``ferrogate --paste`` lifted
(the native layer) and not lifted (``--no-native-middleware``: the WSGI object under
ferrogate), and under ferrogate's own ``--forwarded-allow-ips`` resolution of a plain app."""

from __future__ import annotations

import http.client
import json
import threading
import wsgiref.simple_server

import pytest
from paste.deploy import loadapp

from tests.paste.test_paste_loading import EXIT_APP_LOAD, PASTE_DIR, run_to_exit
from tests.serving import serve

pytestmark = pytest.mark.timeout(60)

INI = PASTE_DIR / "proxyheaders.ini"

#: Requests a proxy on this host sends, each with what its headers say.
PROXIED = {
    "for-proto-host": {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
                       "X-Forwarded-Host": "api.example.com"},
    "trusted-hop-and-port": {"X-Forwarded-For": "198.51.100.1:4711, 127.0.0.1",
                             "X-Forwarded-Port": "8443"},
    "forwarded": {"Forwarded": 'for="[2001:db8::1]:4711";proto=https;host=api.example.com:8443'},
    "ssl-only": {"X-Forwarded-Ssl": "on"},
    "for-only": {"X-Forwarded-For": "203.0.113.9"},
}  # fmt: skip


def fetch(port: int, headers: dict[str, str]) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/", headers={"Host": "internal.example:8080", **headers})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    environ = json.loads(body) if response.status == 200 else {}
    if environ.get("REMOTE_ADDR") == "127.0.0.1":
        environ.pop("REMOTE_PORT")  # the client's own ephemeral port
    return response.status, environ


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def environs(port: int) -> dict[str, tuple[int, dict]]:
    return {name: fetch(port, headers) for name, headers in PROXIED.items()}


@pytest.fixture(scope="module")
def wsgiref_port(monkeypatch_module):
    monkeypatch_module.syspath_prepend(str(PASTE_DIR))  # the ini's factories: pasteapp
    app = loadapp(f"config:{INI}")
    server = wsgiref.simple_server.make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()
    server.server_close()


def test_same_request_same_environ_under_every_server(wsgiref_port):
    with serve("pasteapp:environ_app", "--forwarded-allow-ips", "127.0.0.1",
               cwd=PASTE_DIR) as server:  # fmt: skip
        native = environs(server.port)
    assert native["for-proto-host"][1] == {
        "REMOTE_ADDR": "203.0.113.7", "REMOTE_PORT": "", "wsgi.url_scheme": "https",
        "HTTP_HOST": "api.example.com", "SERVER_NAME": "api.example.com", "SERVER_PORT": "443",
    }  # fmt: skip
    assert native["forwarded"][1]["REMOTE_ADDR"] == "2001:db8::1"
    assert native["trusted-hop-and-port"][1]["SERVER_PORT"] == "8443"
    trust_nobody = ("--forwarded-allow-ips", "")
    with serve("--paste", str(INI), *trust_nobody, "--log-level", "debug",
               cwd=PASTE_DIR) as server:  # fmt: skip
        lifted = environs(server.port)
        server.wait_for_log(r"Native middleware: ProxyHeaders in front of 1 Python app")
    with serve("--paste", str(INI), *trust_nobody, "--no-native-middleware",
               cwd=PASTE_DIR) as server:  # fmt: skip
        as_python = environs(server.port)
    under_wsgiref = environs(wsgiref_port)
    assert lifted == native
    assert as_python == native
    for name, (status, environ) in under_wsgiref.items():
        expected = dict(native[name][1])
        if name == "for-only":
            # Nothing about the host or scheme changed: wsgiref's own SERVER_NAME and
            # SERVER_PORT (its host name and socket) are kept.
            for key in ("SERVER_NAME", "SERVER_PORT"):
                expected[key] = environ[key]
        assert (status, environ) == (200, expected), name


@pytest.mark.parametrize(
    ("pipeline", "seen"),
    [
        # trusted = (nothing): nobody's headers are believed.
        ("nobody", ("127.0.0.1", "http", "internal.example:8080")),
        # headers = X-Forwarded-For: the client, not the scheme or the host.
        ("only_for", ("203.0.113.7", "http", "internal.example:8080")),
    ],
)
def test_trust_and_the_honoured_headers_are_the_filters_options(pipeline, seen):
    with serve("--paste", f"{INI}#{pipeline}", "--forwarded-allow-ips", "",
               cwd=PASTE_DIR) as server:  # fmt: skip
        status, environ = fetch(server.port, PROXIED["for-proto-host"])
    assert status == 200
    assert (environ["REMOTE_ADDR"], environ["wsgi.url_scheme"], environ["HTTP_HOST"]) == seen


def test_contradicting_scheme_headers_are_a_400_lifted_or_not():
    contradicting = {"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}
    for extra in ((), ("--no-native-middleware",)):
        with serve("--paste", str(INI), "--forwarded-allow-ips", "", *extra,
                   cwd=PASTE_DIR) as server:  # fmt: skip
            assert fetch(server.port, contradicting)[0] == 400, extra


def test_the_ipfilter_inside_sees_the_client_the_proxy_names():
    with serve("--paste", f"{INI}#filtered", "--forwarded-allow-ips", "", "--log-level",
               "debug", cwd=PASTE_DIR) as server:  # fmt: skip
        assert fetch(server.port, PROXIED["for-proto-host"])[0] == 200
        assert fetch(server.port, {})[0] == 403
        assert fetch(server.port, PROXIED["trusted-hop-and-port"])[0] == 403  # 198.51.100.1
        server.wait_for_log(r"Native middleware: ProxyHeaders, IPFilter in front of")


def test_a_bad_option_is_a_loading_error_naming_the_filter(tmp_path):
    ini = tmp_path / "bad.ini"
    ini.write_text(INI.read_text().replace("headers = X-Forwarded-For", "headers = X-Real-IP"))
    result = run_to_exit("--paste", f"{ini}#only_for", "--pythonpath", str(PASTE_DIR))
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "[filter:only_x_forwarded_for] use = egg:ferrogate#proxyheaders" in result.stderr
    assert "X-Real-IP" in result.stderr
