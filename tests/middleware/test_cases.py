"""The middleware case table: each request, sent to tests/apps/middleware_stack.py served four
ways (ferrogate lifted, ferrogate --no-native-middleware, wsgiref, gunicorn), gets the same
status, the same headers that matter and the same body."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass, field

import pytest

from tests.middleware.conftest import HELLO


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def send(way, method: str, path: str, headers: dict[str, str] | None = None) -> Answer:
    conn = http.client.HTTPConnection(way.host, way.port, timeout=10)
    try:
        headers = headers or {}
        conn.putrequest(method, path, skip_host="Host" in headers, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
    finally:
        conn.close()


@dataclass
class Case:
    id: str
    path: str
    status: int
    app: str | None = None  # the echo app that answers, with...
    script_name: str = ""
    path_info: str | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    expect_headers: dict[str, str] = field(default_factory=dict)


CASES = [
    # Mount: DispatcherMiddleware's rules.
    Case("mount-prefix", "/api/x?q=1", 200, "api", "/api", "/x"),
    Case("mount-exact", "/api", 200, "api", "/api", ""),
    Case("mount-segment-boundary", "/apix", 200, "site", "", "/apix"),
    Case("mount-longest-wins", "/api/v2/users", 200, "api_v2", "/api/v2", "/users"),
    Case("mount-nested", "/nested/deeper/a", 200, "api", "/nested/deeper", "/a"),
    Case("mount-nested-no-default", "/nested/other", 404, body=b"404 Not Found\n"),
    Case("mount-decoded-prefix", "/a%70i/z", 200, "api", "/api", "/z"),
    Case("mount-host-key", "/anything", 200, "example_host", "", "/anything",
         headers={"Host": "example.org:8080"}),
    Case("mount-default", "/", 200, "site", "", "/"),
    # IP filter, on the client address (127.0.0.1 here).
    Case("ip-deny", "/private/x", 403, body=b"403 Forbidden\n"),
    Case("ip-allow", "/local/x", 200, "local_only", "/local", "/x"),
    # Request id from a trusted peer is kept.
    Case("request-id-trusted", "/api/id", 200, "api", "/api", "/id",
         headers={"X-Request-ID": "given-id-1"},
         expect_headers={"x-request-id": "given-id-1"}),
    # Static files.
    Case("static-file", "/static/hello.txt", 200, body=HELLO,
         expect_headers={"content-type": "text/plain; charset=utf-8",
                         "content-length": str(len(HELLO)), "accept-ranges": "bytes",
                         "cache-control": "public, max-age=60"}),
    Case("static-head", "/static/hello.txt", 200, method="HEAD", body=b"",
         expect_headers={"content-length": str(len(HELLO))}),
    Case("static-range", "/static/hello.txt", 206, headers={"Range": "bytes=0-4"},
         body=b"hello", expect_headers={"content-range": f"bytes 0-4/{len(HELLO)}"}),
    Case("static-suffix-range", "/static/hello.txt", 206, headers={"Range": "bytes=-6"},
         body=b"world\n"),
    Case("static-unsatisfiable-range", "/static/hello.txt", 416,
         headers={"Range": "bytes=1000-2000"},
         expect_headers={"content-range": f"bytes */{len(HELLO)}"}),
    Case("static-hashed-immutable", "/static/app.3f2a9c1b.js", 200,
         expect_headers={"cache-control": "public, max-age=31536000, immutable"}),
    Case("static-index", "/static/sub/", 200, body=b"<h1>index</h1>\n"),
    Case("static-precompressed", "/static/data.json", 200,
         headers={"Accept-Encoding": "gzip"}, body=b"not really gzip, but chosen by name",
         expect_headers={"content-encoding": "gzip", "vary": "Accept-Encoding"}),
    Case("static-missing-falls-through", "/static/nope.txt", 200, "site", "", "/static/nope.txt"),
    Case("static-post-falls-through", "/static/hello.txt", 200, "site", "",
         "/static/hello.txt", method="POST", headers={"Content-Length": "0"}),
    Case("static-dotfile-refused", "/static/.secret", 200, "site", "", "/static/.secret"),
    Case("static-traversal-refused", "/static/../middleware_stack.py", 200, "site", "",
         "/static/../middleware_stack.py"),
    Case("static-encoded-traversal-refused", "/static/%2e%2e/outside.txt", 200, "site", "",
         "/static/../outside.txt"),
    Case("static-symlink-out-refused", "/static/escape.txt", 200, "site", "",
         "/static/escape.txt"),
    Case("static-no-app-404", "/files/nope.txt", 404, body=b"404 Not Found\n"),
    Case("static-no-app-405", "/files/hello.txt", 405, method="DELETE",
         expect_headers={"allow": "GET, HEAD"}),
    Case("static-under-mount", "/files/hello.txt", 200, body=HELLO),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(way, case: Case):
    answer = send(way, case.method, case.path, case.headers)
    assert answer.status == case.status, (way.name, answer)
    if case.app is not None:
        got = answer.json()
        assert (got["app"], got["script_name"], got["path_info"]) == (
            case.app, case.script_name, case.path_info
        ), (way.name, got)
        assert got["method"] == case.method
    if case.body is not None:
        assert answer.body == case.body, way.name
    for name, value in case.expect_headers.items():
        assert answer.headers.get(name) == value, (way.name, name, answer.headers)
    # Every answer, from a layer or the app, carries a request id.
    assert answer.headers.get("x-request-id"), (way.name, answer.headers)


def test_request_id_is_made_when_none_comes_and_reaches_the_app(way):
    answer = send(way, "GET", "/api/made")
    made = answer.headers["x-request-id"]
    assert uuid.UUID(made).version == 7
    assert answer.json()["request_id"] == made


def test_an_unplain_incoming_request_id_is_replaced(way):
    answer = send(way, "GET", "/api/made", {"X-Request-ID": "a b"})
    assert answer.headers["x-request-id"] != "a b"
    assert uuid.UUID(answer.headers["x-request-id"]).version == 7


def test_conditional_get_answers_304_with_the_validators(way):
    first = send(way, "GET", "/static/hello.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = send(way, "GET", "/static/hello.txt", {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["etag"] == etag
    since = send(way, "GET", "/static/hello.txt", {"If-Modified-Since": modified})
    assert since.status == 304
    changed = send(way, "GET", "/static/hello.txt", {"If-None-Match": '"other"'})
    assert changed.status == 200 and changed.body == HELLO


def test_multiple_ranges_are_multipart_byteranges(way):
    answer = send(way, "GET", "/static/hello.txt", {"Range": "bytes=0-4,7-12"})
    assert answer.status == 206
    content_type = answer.headers["content-type"]
    assert content_type.startswith("multipart/byteranges; boundary=")
    boundary = content_type.split("boundary=")[1].encode()
    assert answer.body.count(b"--" + boundary) == 3
    assert b"hello" in answer.body and b"static" in answer.body
    assert b"Content-Range: bytes 0-4/" in answer.body


def test_a_one_mebibyte_file_arrives_whole(way, static_root):
    answer = send(way, "GET", "/static/big.bin")
    assert answer.status == 200
    assert answer.body == (static_root / "big.bin").read_bytes()
    part = send(way, "GET", "/static/big.bin", {"Range": "bytes=100000-299999"})
    assert part.body == (static_root / "big.bin").read_bytes()[100000:300000]


def test_rate_limit_refuses_past_the_burst_with_retry_after(way):
    # 3 per hour per X-Client-Key; a key of this test's own, so the ways do not share it.
    key = {"X-Client-Key": uuid.uuid4().hex}
    allowed = [send(way, "GET", "/limited/x", key) for _ in range(3)]
    assert [a.status for a in allowed] == [200, 200, 200], way.name
    assert allowed[0].headers["ratelimit-policy"] == '"default";q=3;w=3600'
    assert allowed[-1].headers["ratelimit"].startswith('"default";r=0;')
    refused = send(way, "GET", "/limited/x", key)
    assert refused.status == 429 and refused.body == b"429 Too Many Requests\n"
    assert 1000 < int(refused.headers["retry-after"]) <= 1200
    # Another key has its own budget.
    other = send(way, "GET", "/limited/x", {"X-Client-Key": uuid.uuid4().hex})
    assert other.status == 200
