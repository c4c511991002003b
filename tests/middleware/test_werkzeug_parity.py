"""Where werkzeug defines a behaviour, ferrogate's layer agrees: Mount against
DispatcherMiddleware, StaticFiles against SharedDataMiddleware, the same requests through
werkzeug's test client (the WSGI objects called directly, as any server would)."""

from __future__ import annotations

import json

import pytest
from ferrogate.middleware import Mount, StaticFiles
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.test import Client

from tests.middleware.conftest import make_static_root


def echo(name):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps([name, environ["SCRIPT_NAME"], environ["PATH_INFO"]]).encode()]

    return app


MOUNTS = {"/api": echo("api"), "/api/v2": echo("v2"), "/a/b/c": echo("abc")}
DEFAULT = echo("default")

PATHS = ["/", "/api", "/api/", "/api/x/y", "/apix", "/api/v2", "/api/v2/z", "/api/v3",
         "/a/b", "/a/b/c", "/a/b/c/d", "/a/b/cd", "//api", "/API"]


@pytest.mark.parametrize("path", PATHS)
def test_mount_routes_as_dispatcher_middleware(path):
    ours = Client(Mount(MOUNTS, default=DEFAULT)).get(path)
    theirs = Client(DispatcherMiddleware(DEFAULT, MOUNTS)).get(path)
    assert (ours.status_code, ours.json) == (theirs.status_code, theirs.json)


@pytest.mark.parametrize("script_name", ["", "/outer"])
def test_mount_adds_to_an_existing_script_name(script_name):
    environ = {"SCRIPT_NAME": script_name}
    ours = Client(Mount(MOUNTS, default=DEFAULT)).get("/api/x", environ_overrides=environ)
    theirs = Client(DispatcherMiddleware(DEFAULT, MOUNTS)).get("/api/x", environ_overrides=environ)
    assert ours.json == theirs.json == ["api", f"{script_name}/api", "/x"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_static_root(tmp_path_factory.mktemp("parity") / "root")


@pytest.mark.parametrize(
    "path",
    ["/static/hello.txt", "/static/sub/index.html", "/static/nope.txt", "/elsewhere",
     "/static/../outside.txt", "/static/%2e%2e/outside.txt", "/static"],
)
def test_static_files_serve_and_fall_through_as_shared_data_middleware(root, path):
    ours = Client(StaticFiles(DEFAULT, {"/static": str(root)})).get(path)
    theirs = Client(SharedDataMiddleware(DEFAULT, {"/static": str(root)})).get(path)
    assert ours.status_code == theirs.status_code, path
    assert ours.data == theirs.data, path
    if ours.status_code == 200 and theirs.headers.get("Content-Type", "").startswith("text/"):
        assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]


def test_static_files_answer_a_conditional_get_as_shared_data_middleware(root):
    for app in (StaticFiles(DEFAULT, {"/static": str(root)}),
                SharedDataMiddleware(DEFAULT, {"/static": str(root)})):
        client = Client(app)
        first = client.get("/static/hello.txt")
        again = client.get("/static/hello.txt",
                           headers={"If-Modified-Since": first.headers["Last-Modified"]})
        assert again.status_code == 304
