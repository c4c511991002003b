"""The paste.deploy row of the end-to-end benchmark: examples/openstack_style (a routes + webob
API composed by api-paste.ini: a urlmap, ferrogate's request-id, IP-filter and rate-limit
filters, a Python fault wrapper and noauth filter) served from its ini file by
``ferrogate --paste``, ``gunicorn --paste`` (gthread) and ``uwsgi --paste``, one worker each.

Every server loads the same ini, so every one runs the same Python objects; only ferrogate
lifts the outer filters into its native request path. gunicorn and uWSGI need ferrogate
(for the egg:ferrogate filters), PasteDeploy, Routes and WebOb: gunicorn runs from the repo's
.venv (requirements-dev.txt has them all), uWSGI from the bench venv with the repo venv's
site-packages and python/ on its --pythonpath. bench.py merges `scenarios()` and `servers()`.
"""

from __future__ import annotations

import glob
import os
import tempfile

from definitions import HOST, Scenario, Server, expect_body

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
EXAMPLE = os.path.join(REPO, "examples", "openstack_style")
REPO_VENV = os.path.join(REPO, ".venv")
BENCH_BIN = os.path.join(HERE, ".venv", "bin")

#: The servers of the paste row (opt-in: only this scenario runs them).
PASTE_SERVERS = ("ferrogate-paste", "gunicorn-paste", "uwsgi-paste")


def _ini() -> str:
    """The example's ini with a rate limit no wrk run reaches, so that every request is
    counted by the limiter and none is refused (the row measures the pipeline, not 429s), and
    0.0.0.0 on the IP filter's allow list: uWSGI 2.0.31's --http11-socket gives every request
    after the first on a keep-alive connection REMOTE_ADDR 0.0.0.0 (the first gets
    127.0.0.1), which the example's list would refuse with 403s. Every server gets the copy;
    only uWSGI's requests need the entry."""
    directory = os.path.join(tempfile.gettempdir(), "ferrogate-bench-paste")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(EXAMPLE, "api-paste.ini")) as fh:
        text = fh.read()
    text = text.replace("rate = 1000/s", "rate = 10000000/s").replace(
        "burst = 2000", "burst = 10000000"
    )
    text = text.replace("allow = 127.0.0.1 ", "allow = 127.0.0.1 0.0.0.0 ")
    path = os.path.join(directory, "api-paste.ini")
    with open(path, "w") as fh:
        fh.write(text)
    return path


def _site_packages() -> str:
    found = glob.glob(os.path.join(REPO_VENV, "lib", "python3*", "site-packages"))
    return found[0] if found else os.path.join(REPO_VENV, "lib")


def scenarios() -> dict:
    openstack = Scenario(
        "openstack",
        "hello",  # unused: the paste servers load the ini
        "examples/openstack_style from api-paste.ini: GET /v2/servers through urlmap, "
        "request id, IP filter, rate limit, fault wrapper, noauth, routes + webob",
        path="/v2/servers",
        headers={"X-Auth-Token": "bench"},
        wrk_args=["-H", "X-Auth-Token: bench"],
        check=expect_body(b'{"servers": []}'),
        servers=PASTE_SERVERS,
    )
    return {openstack.name: openstack}


def servers() -> dict:
    ferrogate = os.environ.get("FERROGATE", os.path.join(REPO_VENV, "bin", "ferrogate"))
    items = [
        Server(
            "ferrogate-paste",
            "ferrogate --paste",
            "workers",
            lambda app, port: [ferrogate, "--paste", _ini(), "--pythonpath", EXAMPLE,
                               "--bind", f"{HOST}:{port}", "--workers", "1"],
            dist="ferrogate",
            python=os.path.join(os.path.dirname(ferrogate), "python"),
            opt_in=True,
        ),
        Server(
            "gunicorn-paste",
            "gunicorn --paste gthread x4",
            "workers",
            lambda app, port: [os.path.join(REPO_VENV, "bin", "gunicorn"), "--paste", _ini(),
                               "--pythonpath", EXAMPLE, "-k", "gthread", "-w", "1",
                               "--threads", "4", "-b", f"{HOST}:{port}",
                               "--log-level", "warning"],
            dist="gunicorn",
            python=os.path.join(REPO_VENV, "bin", "python"),
            opt_in=True,
        ),
        Server(
            "uwsgi-paste",
            "uWSGI --paste 1p x4t",
            "workers",
            lambda app, port: [
                os.path.join(BENCH_BIN, "uwsgi"), "--http11-socket", f"{HOST}:{port}",
                "--http-auto-chunked", "--master", "--processes", "1", "--threads", "4",
                "--paste", f"config:{_ini()}",
                "--pythonpath", EXAMPLE, "--pythonpath", _site_packages(),
                "--pythonpath", os.path.join(REPO, "python"),
                "--need-app", "--die-on-term", "--disable-logging", "--ignore-sigpipe",
                "--ignore-write-errors", "--disable-write-exception", "--buffer-size", "32768",
            ],
            dist="uWSGI",
            python=os.path.join(BENCH_BIN, "python"),
            opt_in=True,
        ),
    ]
    return {server.name: server for server in items}
