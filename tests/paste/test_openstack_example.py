"""examples/openstack_style: the routes + webob API composed by its api-paste.ini, served by
``ferrogate --paste``, by ``pserve`` (``[server:main] use = egg:ferrogate``) and by
``gunicorn --paste``; the same requests get the same responses from all three."""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.serving import free_port, serve, start, start_script, wait_until_ready

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "openstack_style"
BIN = Path(sys.executable).parent
TOKEN = {"X-Auth-Token": "any", "Host": "api.test"}
JSON = {**TOKEN, "Content-Type": "application/json"}

#: (method, path, headers, body): a client's session against the API, in order.
SESSION = [
    ("GET", "/", {"Host": "api.test"}, None),
    ("GET", "/v1/", TOKEN, None),
    ("GET", "/v2", TOKEN, None),
    ("GET", "/v2/servers", {"Host": "api.test"}, None),  # no token: 401 fault
    ("GET", "/v2/servers", TOKEN, None),
    ("POST", "/v2/servers", JSON, {"server": {"name": "web-1", "metadata": {"role": "web"}}}),
    ("POST", "/v2/servers", JSON, {"server": {"name": "db-1"}}),
    ("GET", "/v2/servers", TOKEN, None),
    ("GET", "/v1/servers", TOKEN, None),
    ("GET", "/v2/servers/1", TOKEN, None),
    ("PUT", "/v2/servers/1", JSON, {"server": {"name": "web-renamed"}}),
    ("GET", "/v1/servers/1", TOKEN, None),
    ("DELETE", "/v2/servers/2", TOKEN, None),
    ("GET", "/v2/servers/2", TOKEN, None),  # 404 itemNotFound
    ("DELETE", "/v2/servers/2", TOKEN, None),
    ("POST", "/v2/servers", JSON, b"{not json"),  # 400 badRequest
    ("POST", "/v2/servers", {**TOKEN, "Content-Type": "text/plain"}, b"x"),  # 415
    ("POST", "/v2/servers", JSON, {"server": {"name": ""}}),  # 400: empty name
    ("GET", "/v2/flavors", TOKEN, None),  # no route: 404
    ("GET", "/v3/servers", {"Host": "api.test"}, None),  # no such version: 404
    ("GET", "/v2/servers", {**TOKEN, "X-Auth-Project-Id": "other"}, None),  # another project
]

#: Headers that differ between two runs or two servers by nature.
VOLATILE = {"date", "server", "x-request-id", "ratelimit", "ratelimit-policy", "connection",
            "keep-alive"}


def run_session(port: int) -> list[dict]:
    """The session's responses, each as status, content type and parsed body."""
    results = []
    for method, path, headers, body in SESSION:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        conn.close()
        content_type = response.getheader("Content-Type", "")
        parsed = json.loads(raw) if raw and "json" in content_type else raw.decode()
        results.append({
            "request": f"{method} {path}",
            "status": response.status,
            "content_type": content_type,
            "body": parsed,
            "headers": sorted(
                name.lower() for name, _ in response.getheaders()
                if name.lower() not in VOLATILE
            ),
            "request_id": bool(response.getheader("X-Request-ID")),
        })
    return results


def check_session(results: list[dict]) -> None:
    """What the API must answer, whoever serves it."""
    by_request = [(r["request"], r["status"]) for r in results]
    assert [status for _, status in by_request] == [
        200, 200, 200, 401, 200, 202, 202, 200, 200, 200, 200, 200, 204, 404, 404, 400, 415,
        400, 404, 404, 200,
    ], by_request
    assert [v["id"] for v in results[0]["body"]["versions"]] == ["v1.0", "v2.0"]
    assert results[3]["body"] == {"unauthorized": {
        "code": 401, "message": "Authentication required: send an X-Auth-Token header"}}
    assert results[5]["body"]["server"] == {
        "id": "1", "name": "web-1", "status": "ACTIVE", "metadata": {"role": "web"},
        "links": [{"rel": "self", "href": "http://api.test/v2/servers/1"}]}
    assert [s["name"] for s in results[7]["body"]["servers"]] == ["web-1", "db-1"]
    assert results[8]["body"]["servers"][0] == {"id": "1", "name": "web-1", "status": "ACTIVE"}
    assert results[11]["body"]["server"]["name"] == "web-renamed"
    assert results[13]["body"] == {"itemNotFound": {
        "code": 404, "message": "Server 2 could not be found."}}
    assert results[15]["body"] == {"badRequest": {"code": 400, "message": "Malformed request body"}}
    assert "badMediaType" in results[16]["body"]
    assert results[20]["body"] == {"servers": []}
    # Every response went through the request-id filter, faults included.
    assert all(r["request_id"] for r in results), [r["request"] for r in results]


def test_ferrogate_paste_serves_the_example():
    with serve("--paste", "api-paste.ini", cwd=EXAMPLE) as server:
        check_session(run_session(server.port))


def test_example_filters_are_lifted():
    with serve("--paste", "api-paste.ini", "--log-level", "debug", cwd=EXAMPLE) as server:
        server.get("/")
        line = server.wait_for_log(r"Native middleware: (.*) in front of (\d+) Python app")[0]
        for name in ("Mount", "RequestId", "IPFilter", "RateLimit"):
            assert name in line.group(1), line.group(0)
        assert line.group(2) == "3"  # versions, v1 and v2 behind their Python filters


def _pserve_ini(tmp_path: Path, port: int, extra: str = "") -> Path:
    """The example's ini with its [server:main] on a free port (and `extra` settings)."""
    text = (EXAMPLE / "api-paste.ini").read_text()
    text = text.replace("bind = 127.0.0.1:8774", f"bind = 127.0.0.1:{port}\n{extra}")
    ini = tmp_path / "api-paste.ini"
    ini.write_text(text)
    return ini


def test_pserve_serves_the_example_with_ferrogate(tmp_path):
    port = free_port()
    ini = _pserve_ini(tmp_path, port, "access_log = -\nmax-requests = 1000")
    server = start([str(ini)], cwd=tmp_path, env={"PYTHONPATH": str(EXAMPLE)},
                   wait_ready=False, argv_prefix=[str(BIN / "pserve")])
    server.binds = [f"127.0.0.1:{port}"]
    server.host, server.port = "127.0.0.1", port
    try:
        wait_until_ready(server)
        check_session(run_session(port))
        assert "Starting ferrogate" in server.log()  # ferrogate, not waitress or wsgiref
        assert re.search(r'"GET /v2/servers/1 HTTP/1.1" 200', server.stdout()), server.stdout()
    finally:
        code = server.stop()
        server.kill()
    assert code == 0, server.log()


def test_gunicorn_paste_gives_the_same_responses():
    with serve("--paste", "api-paste.ini", cwd=EXAMPLE) as server:
        ours = run_session(server.port)
    port = free_port()
    gunicorn = start(
        ["--paste", "api-paste.ini", "-k", "gthread", "-w", "1", "--threads", "4",
         "-b", f"127.0.0.1:{port}"],
        cwd=EXAMPLE, wait_ready=False, argv_prefix=[sys.executable, "-m", "gunicorn"],
    )
    gunicorn.binds = [f"127.0.0.1:{port}"]
    try:
        wait_until_ready(gunicorn)
        theirs = run_session(port)
    finally:
        gunicorn.stop()
        gunicorn.kill()
    check_session(theirs)
    for mine, other in zip(ours, theirs):
        assert mine == other, (mine["request"], mine, other)


def test_example_readme_curl_commands():
    """The README's curl lines, as written."""
    with serve("--paste", "api-paste.ini", cwd=EXAMPLE) as server:
        base = f"http://127.0.0.1:{server.port}"
        created = subprocess.run(
            ["curl", "-s", "-H", "X-Auth-Token: t", "-H", "Content-Type: application/json",
             "-d", '{"server": {"name": "web-1"}}', f"{base}/v2/servers"],
            capture_output=True, text=True, check=True,
        )
        assert json.loads(created.stdout)["server"]["name"] == "web-1"


def test_an_eventlet_style_script_serves_the_same_responses():
    """examples/openstack_style/serve_eventlet_style.py: PasteDeploy's loadapp, then
    ferrogate.wsgi.server(ferrogate.listen(...), app), as an eventlet service does."""
    with serve("--paste", "api-paste.ini", cwd=EXAMPLE) as server:
        ours = run_session(server.port)
    port = free_port()
    script = start_script(["serve_eventlet_style.py", str(port)], f"127.0.0.1:{port}", cwd=EXAMPLE)
    try:
        theirs = run_session(port)
    finally:
        code = script.stop(signal.SIGINT)  # Ctrl-C: server() returns, the script ends
    check_session(theirs)
    for mine, other in zip(ours, theirs):
        assert mine == other, (mine["request"], mine, other)
    assert code == 0, script.log()
