"""wsgi.errors goes to the error log; wsgi.file_wrapper serves files byte for byte
(apps/errors_stream.py, apps/files.py)."""

from __future__ import annotations

import hashlib
import os
import uuid
from urllib.parse import urlencode

import pytest

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def errors_server(serve):
    with serve("errors_stream:app") as s:
        yield s


@pytest.fixture(scope="module")
def files_server(serve):
    with serve("files:app") as s:
        yield s


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "random.bin"
    path.write_bytes(os.urandom(5 * MIB + 123))
    return path


def test_wsgi_errors_write_goes_to_error_log(errors_server):
    marker = uuid.uuid4().hex
    assert errors_server.get(f"/?{marker}").status == 200
    errors_server.wait_for_log(rf"written {marker}$")
    errors_server.wait_for_log(rf"line one {marker}$")
    errors_server.wait_for_log(rf"line two {marker}$")


def fetch(server, **query):
    with server.connect(timeout=30) as conn:
        conn.send_request("GET", "/?" + urlencode(query))
        return conn.read_response()


@pytest.mark.parametrize("blksize", [8192, 1000, 1 << 20])
def test_real_file_is_served_identically_with_right_length(files_server, big_file, blksize):
    data = big_file.read_bytes()
    resp = fetch(files_server, path=big_file, blksize=blksize, length=1)
    assert resp.status == 200
    assert resp.header("Content-Length") == str(len(data))
    assert hashlib.sha256(resp.body).hexdigest() == hashlib.sha256(data).hexdigest()


def test_real_file_without_app_length_is_served_identically(files_server, big_file):
    data = big_file.read_bytes()
    resp = fetch(files_server, path=big_file)
    assert resp.status == 200
    if resp.header("Content-Length") is not None:
        assert resp.header("Content-Length") == str(len(data))
    assert resp.body == data


def test_file_wrapper_starts_at_current_file_position(files_server, big_file):
    data = big_file.read_bytes()
    resp = fetch(files_server, path=big_file, offset=1000, length=1)
    assert resp.header("Content-Length") == str(len(data) - 1000)
    assert resp.body == data[1000:]


def test_non_file_object_is_served_through_file_wrapper(files_server, big_file):
    data = big_file.read_bytes()
    resp = fetch(files_server, path=big_file, kind="bytesio", blksize=4096, length=1)
    assert resp.header("Content-Length") == str(len(data))
    assert resp.body == data


def test_empty_file_is_served(files_server, tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    resp = fetch(files_server, path=empty, length=1)
    assert (resp.status, resp.header("Content-Length"), resp.body) == (200, "0", b"")


def test_head_of_file_has_length_and_no_body(files_server, big_file):
    with files_server.connect() as conn:
        conn.send_request("HEAD", "/?" + urlencode({"path": big_file, "length": 1}))
        head = conn.read_response(method="HEAD")
        conn.send_request(
            "GET", "/?" + urlencode({"path": big_file, "length": 1, "offset": 5 * MIB})
        )
        after = conn.read_response()
    assert head.header("Content-Length") == str(big_file.stat().st_size)
    assert after.body == big_file.read_bytes()[5 * MIB :]
