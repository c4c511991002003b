"""``ferrogate.make_server`` as a drop-in for ``wsgiref.simple_server.make_server``.

Each scenario runs in its own process (apps/api_make_server.py prints what it saw), so a
server that never returns fails one test instead of hanging the run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from tests.serving import APPS_DIR, free_port, server_env, start_script


def run_scenario(name: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "api_make_server.py", name],
        cwd=APPS_DIR,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=45,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_serve_forever_in_thread_then_shutdown():
    seen = run_scenario("serve_forever_in_thread")
    assert seen["address"][0] == "127.0.0.1"
    assert seen["address"][1] > 0, "port 0 must be replaced by the port actually bound"
    assert seen["address_types"] == ["str", "int"]
    assert seen["bodies"] == [[200, "hello /one"], [200, "hello /two"]]
    assert seen["thread_stopped"], "serve_forever did not return after shutdown()"
    assert seen["shutdown_s"] < 3
    assert seen["refused_after_close"], "server_close() must close the listening socket"


def test_handle_request_serves_exactly_one_request_per_call():
    seen = run_scenario("handle_request")
    assert seen["first"] == [200, "hello /first"]
    assert seen["second_waited"], "a request was answered with no handle_request() running"
    assert seen["second"] == [200, "hello /second"]


def test_context_manager_closes_the_server():
    seen = run_scenario("context_manager")
    assert seen["body"] == [200, "hello /ctx"]
    assert seen["refused_after_exit"]


def test_wsgiref_server_and_handler_class_arguments_are_accepted():
    assert run_scenario("wsgiref_signature")["body"] == [200, "hello /sig"]


def test_wsgiref_tutorial_runs_with_only_the_import_changed():
    port = free_port()
    # The tutorial hard-codes port 8000; only the port is redirected, to a free one.
    shim = (
        "import runpy, ferrogate; real = ferrogate.make_server; "
        f"ferrogate.make_server = lambda host, port, app, *a: real(host, {port}, app, *a); "
        "runpy.run_path('wsgiref_tutorial.py', run_name='__main__')"
    )
    server = start_script(["-c", shim], bind=f"127.0.0.1:{port}")
    try:
        resp = server.get("/anything")
        assert resp.status == 200
        assert resp.body == b"Hello World"
        assert resp.header("Content-type") == "text/plain; charset=utf-8"
        server.send_signal(signal.SIGINT)  # "Serve until process is killed": Ctrl-C stops it
        assert server.wait(10) is not None, "serve_forever ignored KeyboardInterrupt"
        assert "Serving on port 8000..." in server.stdout()
    finally:
        server.kill()
