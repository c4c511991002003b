"""Real frameworks end to end through requests: GET, JSON POST, a 20 MiB multipart upload,
cookies, a redirect and a streamed response (apps/flask_app.py, apps/django_app.py)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests

MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["flask", "django"])
def framework(request, serve):
    spec = {"flask": "flask_app:app", "django": "django_app:application"}[request.param]
    with serve(spec, "--threads", "2") as server:
        server.name = request.param
        yield server


def test_get(framework):
    resp = requests.get(framework.url("/"), timeout=10)
    assert resp.status_code == 200
    assert resp.text == f"Hello from {framework.name.capitalize()}"
    assert resp.headers["Server"]


def test_json_post(framework):
    payload = {"numbers": [1, 2, 3.5], "name": "café"}
    resp = requests.post(framework.url("/json"), json=payload, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"received": payload, "total": 6.5}


@pytest.mark.timeout(120)
def test_multipart_upload_of_20_mib_file(framework):
    content = os.urandom(20 * MIB)
    resp = requests.post(
        framework.url("/upload"),
        files={"file": ("big.bin", content, "application/octet-stream")},
        data={"note": "twenty mebibytes"},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json() == {
        "filename": "big.bin",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "note": "twenty mebibytes",
    }


def test_cookies_round_trip(framework):
    with requests.Session() as session:
        resp = session.get(framework.url("/set-cookie"), timeout=10)
        assert resp.status_code == 200
        assert len(resp.raw.headers.getlist("Set-Cookie")) == 2
        assert session.cookies.get("flavour") == "oatmeal"
        back = session.get(framework.url("/read-cookie"), timeout=10).json()
    assert back == {"flavour": "oatmeal", "session": "abc123"}


def test_redirect(framework):
    resp = requests.get(framework.url("/old"), allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/new")
    followed = requests.get(framework.url("/old"), timeout=10)
    assert followed.status_code == 200
    assert followed.text == "arrived at new"
    assert [r.status_code for r in followed.history] == [302]


def test_streaming_response_arrives_incrementally(framework):
    started = time.monotonic()
    with requests.get(framework.url("/stream"), stream=True, timeout=10) as resp:
        assert resp.status_code == 200
        arrivals, lines = [], []
        for line in resp.iter_lines(chunk_size=1):
            lines.append(line)
            arrivals.append(time.monotonic() - started)
    assert lines == [f"line {i}".encode() for i in range(5)]
    assert arrivals[0] < 1.0, f"first line only after {arrivals[0]:.1f}s: the body was buffered"
    assert arrivals[-1] >= 1.1
