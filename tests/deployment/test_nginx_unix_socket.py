"""The README's "nginx in front over a Unix socket" recipe, run for real: Debian's nginx
proxies to ferrogate's socket (owned by the workers' group, mode 0770 from --umask 0o007),
and the app sees the client's address and scheme from nginx's X-Forwarded-* headers, which
ferrogate believes because the peer is a Unix socket (the default --forwarded-allow-ips)."""

from __future__ import annotations

import grp
import http.client
import json
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from tests.nginx import running_nginx
from tests.serving import free_port, serve

pytestmark = pytest.mark.timeout(60)


def nginx_site(port: int, socket_path: Path) -> str:
    # The recipe's server block, as the README gives it (socket path and port filled in).
    return f"""
http {{
    access_log off;
    upstream app {{ server unix:{socket_path}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


@pytest.fixture
def run_dir():
    """Like /run/myapp: a folder nginx's user may enter (pytest's own are root-only)."""
    folder = Path(tempfile.mkdtemp(prefix="ferrogate-run-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_nginx_in_front_over_a_unix_socket(tmp_path, run_dir):
    sock = run_dir / "app.sock"
    port = free_port()
    flags = ["--group", "nogroup", "--umask", "0o007", "--workers", "2"]
    with serve("forwarded_dump:app", *flags, binds=[f"unix:{sock}"]) as server:
        mode = sock.stat()
        assert stat.S_IMODE(mode.st_mode) == 0o770
        assert grp.getgrgid(mode.st_gid).gr_name == "nogroup"
        # nginx's workers run as nobody:nogroup, reaching the socket through its group only.
        with running_nginx(tmp_path, port, nginx_site(port, sock), user="nobody nogroup"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            seen = []
            for i in range(5):  # over nginx's kept-alive upstream connections
                conn.request("GET", f"/via-nginx/{i}?q=1", headers={"Host": "example.test"})
                resp = conn.getresponse()
                assert resp.status == 200
                seen.append(json.loads(resp.read()))
            conn.close()
        assert server.is_running()
    for environ in seen:
        assert environ["REMOTE_ADDR"] == "127.0.0.1"
        assert environ["wsgi.url_scheme"] == "http"
        assert environ["HTTP_HOST"] == "example.test"
        assert environ["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"
