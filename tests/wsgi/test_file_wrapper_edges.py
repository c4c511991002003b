"""wsgi.file_wrapper edge cases of the zero-copy path (src/wsgi/file_body.rs) and of the
iterated fallback, with the wrapped object's close() counted in every case
(apps/file_edges.py; the byte-for-byte basics are in test_errors_and_file_wrapper.py)."""

from __future__ import annotations

import os
import time
import uuid
from urllib.parse import urlencode

import pytest

from tests.serving import wait_for_text

#: After every expected close() showed up, how long to keep watching for a second one.
SECOND_CLOSE_GRACE_S = 0.3
#: Not a multiple of the page size, so offsets into it are not page-aligned either.
FILE_SIZE = 256 * 1024 + 123


@pytest.fixture(scope="module")
def server(serve, close_log):
    with serve("file_edges:app", env={"CLOSE_LOG": str(close_log)}) as s:
        yield s


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("file-edges-data") / "random.bin"
    path.write_bytes(os.urandom(FILE_SIZE))
    return path


class Closes:
    """Tags for requests, and a check that each tag's file object was closed exactly once."""

    def __init__(self, log):
        self.log = log
        self.tags: list[str] = []

    def new(self) -> str:
        tag = uuid.uuid4().hex
        self.tags.append(tag)
        return tag

    def assert_each_closed_once(self) -> None:
        for tag in self.tags:
            wait_for_text(self.log.read_text, rf"^{tag}$", timeout=10)
        time.sleep(SECOND_CLOSE_GRACE_S)
        words = self.log.read_text().split()
        counts = {tag: words.count(tag) for tag in self.tags}
        assert counts == {tag: 1 for tag in self.tags}, "close() calls per request"


@pytest.fixture
def closes(close_log):
    return Closes(close_log)


def request(conn, closes, path, method="GET", **query):
    """One request for ``path`` on ``conn``, the file object tagged for the close() count."""
    target = "/?" + urlencode({"path": path, "tag": closes.new(), **query})
    conn.send_request(method, target)
    return conn.read_response(method=method)


@pytest.mark.parametrize(
    "query, start",
    [({"seek": 4097}, 4097), ({"seek": FILE_SIZE - 1}, FILE_SIZE - 1), ({"read": 10}, 10)],
    ids=["seek-unaligned", "seek-last-byte", "read-ahead-buffered"],
)
def test_file_positioned_mid_file_sends_only_the_rest(server, data_file, closes, query, start):
    # "read": a buffered file has read ahead a whole buffer; the body starts at tell().
    data = data_file.read_bytes()
    with server.connect() as conn:
        resp = request(conn, closes, data_file, **query)
    assert resp.status == 200
    assert resp.header("Content-Length") == str(FILE_SIZE - start)
    assert resp.body == data[start:]
    closes.assert_each_closed_once()


def test_shorter_content_length_sends_exactly_that_much_and_keeps_the_connection(
    server, data_file, closes
):
    data = data_file.read_bytes()
    with server.connect() as conn:
        short = request(conn, closes, data_file, seek=4097, length=100)
        # A byte too many on the wire would be parsed as the start of the next response.
        after = request(conn, closes, data_file, seek=1)
        again = request(conn, closes, data_file, length=FILE_SIZE // 2)
    assert (short.status, short.header("Content-Length")) == (200, "100")
    assert short.body == data[4097:4197]
    assert (after.status, after.body) == (200, data[1:])
    assert (again.status, again.body) == (200, data[: FILE_SIZE // 2])
    assert conn.buffer == b""
    closes.assert_each_closed_once()


def test_longer_content_length_than_the_file_is_a_500(server, data_file, closes):
    with server.connect() as conn:
        resp = request(conn, closes, data_file, length=FILE_SIZE + 1)
    assert resp.status == 500
    assert resp.body[:100] != data_file.read_bytes()[:100]
    server.wait_for_log(rf"Content-Length: {FILE_SIZE + 1}\b")
    closes.assert_each_closed_once()


def test_longer_content_length_than_the_rest_after_seek_is_a_500(server, data_file, closes):
    with server.connect() as conn:
        resp = request(conn, closes, data_file, seek=1000, length=FILE_SIZE - 999)
    assert resp.status == 500
    closes.assert_each_closed_once()


def test_empty_file_gives_empty_200_with_content_length_0(server, tmp_path, closes):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with server.connect() as conn:
        resp = request(conn, closes, empty)
        follow = request(conn, closes, empty)
    for r in (resp, follow):
        assert (r.status, r.header("Content-Length"), r.body) == (200, "0", b"")
        assert r.header("Transfer-Encoding") is None
    closes.assert_each_closed_once()


def test_file_positioned_at_its_end_gives_empty_body(server, data_file, closes):
    with server.connect() as conn:
        resp = request(conn, closes, data_file, seek=FILE_SIZE)
    assert (resp.status, resp.header("Content-Length"), resp.body) == (200, "0", b"")
    closes.assert_each_closed_once()


@pytest.mark.parametrize(
    "query, start",
    [({}, 0), ({"length": FILE_SIZE}, 0), ({"seek": 4097, "blksize": 1000}, 4097)],
    ids=["no-length", "with-length", "seek"],
)
def test_bytesio_is_served_by_iteration(server, data_file, closes, query, start):
    data = data_file.read_bytes()
    with server.connect() as conn:
        resp = request(conn, closes, data_file, kind="bytesio", **query)
        follow = request(conn, closes, data_file, kind="bytesio", length=FILE_SIZE)
    assert resp.status == 200
    assert resp.body == data[start:]
    if "length" in query:
        assert resp.header("Content-Length") == str(FILE_SIZE)
    assert follow.body == data
    closes.assert_each_closed_once()


@pytest.mark.parametrize("kind", ["file", "bytesio"])
def test_head_on_file_wrapper_sends_headers_and_no_body(server, data_file, closes, kind):
    with server.connect() as conn:
        head = request(conn, closes, data_file, method="HEAD", kind=kind, length=FILE_SIZE)
        # Any body bytes after the HEAD response would garble this one.
        after = request(conn, closes, data_file, kind=kind, seek=FILE_SIZE - 10)
    assert head.status == 200
    assert head.header("Content-Length") == str(FILE_SIZE)
    assert head.body == b""
    assert (after.status, after.body) == (200, data_file.read_bytes()[-10:])
    closes.assert_each_closed_once()


def test_head_on_real_file_without_app_length(server, data_file, closes):
    with server.connect() as conn:
        head = request(conn, closes, data_file, method="HEAD", seek=6)
        after = request(conn, closes, data_file, seek=FILE_SIZE - 3)
    assert head.status == 200
    if head.header("Content-Length") is not None:
        assert head.header("Content-Length") == str(FILE_SIZE - 6)
    assert (after.status, after.body) == (200, data_file.read_bytes()[-3:])
    closes.assert_each_closed_once()
