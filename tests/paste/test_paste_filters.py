"""ferrogate's native middleware as paste.deploy filters (``egg:ferrogate#static``,
``#ipfilter``, ``#ratelimit``, ``#requestid``, ``#compress``) and its ``Mount`` as the
``egg:ferrogate#urlmap`` composite: built from ini strings, lifted when they are the outer
layers, and answering as Paste's urlmap does (``egg:Paste#urlmap`` keeps working)."""

from __future__ import annotations

import gzip
import importlib.metadata

import pytest

from tests.paste.test_paste_loading import EXIT_APP_LOAD, PASTE_DIR, run_to_exit
from tests.serving import serve


def test_entry_points_are_installed():
    groups = {
        "paste.server_runner": {"main"},
        "paste.server_factory": {"main"},
        "paste.filter_factory": {"static", "ipfilter", "ratelimit", "requestid", "compress",
                                 "proxyheaders"},
        "paste.composite_factory": {"urlmap"},
    }
    for group, names in groups.items():
        found = {ep.name for ep in importlib.metadata.entry_points(group=group)
                 if ep.dist is not None and ep.dist.name == "ferrogate"}
        assert names <= found, (group, found)


def test_native_filters_from_the_ini_are_lifted_and_python_filter_runs():
    with serve("--paste", "filters.ini", "--log-level", "debug", cwd=PASTE_DIR) as server:
        response = server.get("/page")
        assert response.status == 200
        # `prefix` (a Python filter) and the app ran; request id and rate limit headers added.
        assert response.body == b"py:hello |/page"
        assert response.header("x-request-id")
        assert response.header("ratelimit-policy") or response.header("ratelimit")
        lifted = server.wait_for_log(r"Native middleware: (.*) in front of 1 Python app")
        layers = lifted[0].group(1)
        for name in ("RequestId", "IPFilter", "RateLimit", "StaticFiles", "Compress"):
            assert name in layers, layers
        static = server.get("/static/hello.txt")
        assert static.status == 200
        assert static.body == b"static file body\n"
        assert static.header("cache-control") == "public, max-age=60"
        big = server.get("/big", headers={"Accept-Encoding": "gzip"})
        assert big.header("content-encoding") == "gzip"
        assert gzip.decompress(big.body) == b"py:" + b"x" * 4096


def test_ipfilter_from_the_ini_refuses():
    with serve("--paste", "filters.ini#denied", cwd=PASTE_DIR) as server:
        assert server.get("/").status == 403


@pytest.mark.parametrize("composite", ["main", "paste"])
def test_urlmap_key_forms(composite):
    """The same table as egg:ferrogate#urlmap (native Mount) and egg:Paste#urlmap (Python)."""
    with serve("--paste", f"urlmap.ini#{composite}", cwd=PASTE_DIR) as server:
        def body(path, host="localhost"):
            response = server.get(path, headers={"Host": host})
            assert response.status == 200, (path, host, response.status)
            return response.body.decode()

        assert body("/v1/servers") == "v1 /v1|/servers"
        assert body("/v1") == "v1 /v1|"
        assert body("/v1/admin/x") == "admin /v1/admin|/x"
        assert body("/v1x") == "notfound |/v1x"  # a prefix ends on a segment boundary
        assert body("/v1/servers", host="api.example.com") == "api-host /v1|/servers"
        assert body("/v1/servers", host="API.example.com:8080") == "api-host /v1|/servers"
        assert body("/anything", host="static.example.com") == "static-host |/anything"
        assert body("/elsewhere") == "notfound |/elsewhere"


def test_urlmap_root_key_takes_the_rest():
    with serve("--paste", "urlmap.ini#rooted", cwd=PASTE_DIR) as server:
        assert server.get("/v1/a").body == b"v1 /v1|/a"
        assert server.get("/other").body == b"root |/other"


def test_urlmap_is_lifted():
    with serve("--paste", "urlmap.ini", "--log-level", "debug", cwd=PASTE_DIR) as server:
        server.get("/v1")
        lines = server.wait_for_log(r"Native middleware: (.*) in front of (\d+) Python app")
        assert "Mount" in lines[0].group(1)


#: (Host, path) pairs for the port keys; the expected answers are egg:Paste#urlmap's.
PORT_REQUESTS = [
    ("api.example.com:8080", "/v1/servers"),  # the port key
    ("API.example.com:8080", "/v1"),  # the host in any case
    ("api.example.com", "/v1/servers"),  # no port: 80, not 8080
    ("api.example.com:8081", "/v1/servers"),
    ("api.example.com:8080", "/v1/admin/x"),  # the host without a port is tried first
    ("static.example.com:443", "/x"),
    ("static.example.com", "/x"),
    ("static.example.com:80", "/x"),
    ("elsewhere:8080", "/v1/servers"),
]


def test_urlmap_port_keys_answer_as_pastes_urlmap():
    answers = {}
    for composite in ("ports", "paste_ports"):
        with serve("--paste", f"urlmap.ini#{composite}", cwd=PASTE_DIR) as server:
            answers[composite] = [
                server.get(path, headers={"Host": host}).body.decode()
                for host, path in PORT_REQUESTS
            ]
    assert answers["ports"] == answers["paste_ports"]
    assert answers["ports"] == [
        "api-host /v1|/servers", "api-host /v1|", "v1 /v1|/servers", "v1 /v1|/servers",
        "admin /v1/admin|/x", "static-host |/x", "notfound |/x", "notfound |/x",
        "v1 /v1|/servers",
    ]  # fmt: skip


def test_urlmap_port_without_domain_is_refused_by_name(tmp_path):
    ini = tmp_path / "port.ini"
    ini.write_text(
        "[composite:main]\nuse = egg:ferrogate#urlmap\nport 8080 /v1 = app\n"
        "[app:app]\npaste.app_factory = pasteapp:app_factory\n"
    )
    result = run_to_exit("--paste", str(ini), "--pythonpath", str(PASTE_DIR))
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "[composite:main] use = egg:ferrogate#urlmap: urlmap key" in result.stderr
    assert "'port' needs a 'domain'" in result.stderr
