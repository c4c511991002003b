"""--forward on the command line and [[forward]] tables in ferrogate.toml: the same Forward
layer as the Python object, mounted beside the app; mistakes named with their key."""

from __future__ import annotations

import subprocess
import sys
import threading
from importlib.metadata import entry_points
from wsgiref.simple_server import make_server

import pytest
import requests

from tests import serving
from tests.middleware.forward_peers import ferrogate_upstream


@pytest.fixture(scope="module")
def two_upstreams():
    with ferrogate_upstream("one") as one, ferrogate_upstream("two") as two:
        yield one.url(""), two.url("")


def names(url: str, count: int) -> list[str]:
    return [requests.get(url).json()["name"] for _ in range(count)]


def test_forward_flag_mounts_a_proxy_beside_the_app(two_upstreams):
    one, two = two_upstreams
    spec = f"/search={one},{two},strip_prefix=true,timeout=5"
    with serving.serve("hello:app", "--forward", spec) as server:
        assert sorted(names(server.url("/search/echo"), 4)) == ["one", "one", "two", "two"]
        assert requests.get(server.url("/search/echo?q=1")).json()["path"] == "/echo"
        assert requests.get(server.url("/other")).text == "app"


def test_forward_tables_in_ferrogate_toml(two_upstreams, tmp_path):
    one, two = two_upstreams
    (tmp_path / "ferrogate.toml").write_text(
        f'[[forward]]\nprefix = "/a"\nupstreams = ["{one}"]\nstrip_prefix = true\n\n'
        f'[[forward]]\nprefix = "/b"\nupstreams = "{two}"\nstrategy = "least_conn"\n'
    )
    config = ["--config", str(tmp_path / "ferrogate.toml")]
    with serving.serve("hello:app", *config) as server:
        assert names(server.url("/a/echo"), 2) == ["one", "one"]
        got = requests.get(server.url("/b/echo")).json()
        assert (got["name"], got["path"]) == ("two", "/b/echo")


@pytest.mark.parametrize(("text", "named"), [
    ('[[forward]]\nprefix = "/a"\nupstreams = ["http://x:1"]\nbogus = 1\n',
     "bogus=1"),
    ('[[forward]]\nupstreams = ["http://x:1"]\n', "needs a prefix"),
])
def test_a_bad_forward_table_is_refused_naming_the_key_and_file(tmp_path, text, named):
    (tmp_path / "ferrogate.toml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "hello:app", "--check-config"],
        cwd=tmp_path, env=serving.server_env(), capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "forward" in result.stderr and "ferrogate.toml" in result.stderr, result.stderr
    assert named in result.stderr, result.stderr


def test_a_bad_forward_option_value_stops_the_start_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "hello:app", "--bind",
         f"127.0.0.1:{serving.free_port()}", "--forward", "/s=http://x:1,strategy=fastest"],
        cwd=serving.APPS_DIR, env=serving.server_env(), capture_output=True, text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "strategy \"fastest\" is not round_robin, least_conn or hash" in result.stderr


def test_paste_app_factory_builds_a_forward(two_upstreams):
    """``use = egg:ferrogate#forward``: Paste Deploy finds the factory by its entry point and
    passes the section's keys as strings."""
    (point,) = entry_points(group="paste.app_factory", name="forward")
    one, two = two_upstreams
    app = point.load()({}, upstreams=f"{one}\n{two}", strip_prefix="false", timeout="5")
    httpd = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/echo"
        assert sorted(names(url, 4)) == ["one", "one", "two", "two"]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(("args", "keywords", "message"), [
    ([], {}, "at least one upstream"),
    (["https://x:1"], {"ca_certs": "/nonexistent/ca.pem"}, "ca_certs /nonexistent/ca.pem"),
    (["ftp://x"], {}, "http[s]://host:port[/base] or unix:/path"),
    (["http://x:1;weight=0"], {}, "weight=N with N from 1 to 100"),
    (["http://x:1;weight=101"], {}, "weight=N with N from 1 to 100"),
    (["unix:relative.sock"], {}, "unix:/absolute/path"),
    (["http://x:1"], {"timeout": 0}, "timeout must be a positive number"),
    (["http://x:1"], {"connect_timeout": -1}, "connect_timeout must be a positive number"),
    (["http://x:1"], {"max_connections": 0}, "max_connections must be positive"),
    (["http://x:1"], {"max_fails": 0}, "max_fails and health_passes must be at least 1"),
    (["http://x:1"], {"health": "healthz"}, "must be a path starting with '/'"),
    (["http://x:1"], {"strategy": "hash", "hash_key": "cookie:x"}, "is not client_ip or header"),
    (["http://x:1"], {"buffered_response_bytes": 1024 * 1024 + 1}, "at most 1048576 (1 MiB)"),
])
def test_bad_forward_arguments_are_refused_with_a_reason(args, keywords, message):
    from ferrogate.middleware import Forward

    with pytest.raises(ValueError, match="Forward") as error:
        Forward(args, **keywords)
    assert message in str(error.value)


def test_weights_at_the_limits_are_accepted():
    from ferrogate.middleware import Forward

    Forward(["http://x:1;weight=1", "http://y:1;weight=100"])


@pytest.mark.parametrize("size", [0, 1024 * 1024 - 1, 1024 * 1024])
def test_buffered_response_bytes_up_to_1_mib_is_accepted(size):
    from ferrogate.middleware import Forward

    Forward(["http://x:1"], buffered_response_bytes=size)


def test_buffered_response_bytes_is_a_forward_option_and_a_table_key(tmp_path):
    """Accepted as a --forward option and a [[forward]] key (what it changes is tested with
    the keyword in test_forward_failures.py); a value over 1 MiB stops the start."""
    with ferrogate_upstream("one") as one:
        spec = f"/s={one.url('')},strip_prefix=true,buffered_response_bytes=1024"
        (tmp_path / "ferrogate.toml").write_text(
            f'[[forward]]\nprefix = "/s"\nupstreams = ["{one.url("")}"]\n'
            f"strip_prefix = true\nbuffered_response_bytes = 1024\n"
        )
        config = ["--config", str(tmp_path / "ferrogate.toml")]
        for flags in (["--forward", spec], config):
            with serving.serve("hello:app", *flags) as server:
                response = requests.get(server.url("/s/bytes?n=2048"))
                assert response.status_code == 200
                assert response.headers["Content-Length"] == "2048"
                assert len(response.content) == 2048
    result = subprocess.run(
        [sys.executable, "-m", "ferrogate", "hello:app", "--bind",
         f"127.0.0.1:{serving.free_port()}", "--forward",
         "/s=http://x:1,buffered_response_bytes=2000000"],
        cwd=serving.APPS_DIR, env=serving.server_env(), capture_output=True, text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "buffered_response_bytes must be at most 1048576" in result.stderr, result.stderr
