"""--pipeline and [[pipeline]] tables: the wrapping layers in the order the user gives,
outermost first, a kind as often as wanted; the same answers lifted and as plain Python
middleware; mistakes named with their key (and file line)."""

from __future__ import annotations

import uuid

import pytest

from tests import serving
from tests.middleware.conftest import HELLO, Way
from tests.middleware.test_cases import send

FRONT = (
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'front']\n"
)

NATIVE_OR_NOT = pytest.mark.parametrize("native", [[], ["--no-native-middleware"]],
                                        ids=["lifted", "python"])


@NATIVE_OR_NOT
def test_the_order_given_decides_which_layer_answers_first(static_root, tmp_path, native):
    (tmp_path / "front.py").write_text(FRONT)
    static = f"static:/static={static_root}"
    deny_me = "ip_filter:deny=127.0.0.1"
    # Static files outside the IP filter: files are public, the app is not.
    with serving.serve("front:app", "--pipeline", static, "--pipeline", deny_me, *native,
                       cwd=tmp_path) as server:
        way = Way("cli", server.host, server.port)
        assert send(way, "GET", "/static/hello.txt").body == HELLO
        assert send(way, "GET", "/x").status == 403
    # The other way round: the filter refuses the files too.
    with serving.serve("front:app", "--pipeline", deny_me, "--pipeline", static, *native,
                       cwd=tmp_path) as server:
        way = Way("cli", server.host, server.port)
        assert send(way, "GET", "/static/hello.txt").status == 403
        assert send(way, "GET", "/x").status == 403


@NATIVE_OR_NOT
def test_pipeline_tables_in_ferrogate_toml_stack_two_rate_limits(tmp_path, native):
    (tmp_path / "front.py").write_text(FRONT)
    (tmp_path / "ferrogate.toml").write_text(
        "[[pipeline]]\n"
        'layer = "request_id"\n'
        "[[pipeline]]\n"
        'layer = "rate_limit"\n'
        'rate = "2/h"\n'
        "burst = 2\n"
        'key = "header:X-Key"\n'
        "[[pipeline]]\n"
        'layer = "rate_limit"\n'
        'rate = "3/h"\n'
        "burst = 3\n"
        "[[pipeline]]\n"
        'layer = "ip_filter"\n'
        'allow = ["127.0.0.0/8", "::1"]\n'
    )
    with serving.serve("front:app", *native, cwd=tmp_path) as server:
        way = Way("toml", server.host, server.port)
        first, second = ({"X-Key": uuid.uuid4().hex} for _ in range(2))
        answers = [send(way, "GET", "/", key) for key in (first, first, first, second, second)]
        # The per-key limit refuses the third of `first` before the per-address one counts
        # it; the address's budget of 3 then runs out on the second request of `second`.
        assert [answer.status for answer in answers] == [200, 200, 429, 200, 429]
        assert all(answer.headers["x-request-id"] for answer in answers)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--pipeline", "request_id", "--rate-limit", "1/s"], "--rate-limit"),
        (["--pipeline", "ratelimit:rate=1/s"], '"ratelimit" is not a layer'),
        (["--pipeline", "rate_limit:burst=3"], "needs rate="),
        (["--pipeline", "rate_limit:rate=1/s,brust=3"], '"brust" is not one of its options'),
        (["--pipeline", "rate_limit:rate=often"], "often"),
        (["--pipeline", "static:/s=/no/such/dir"], "/no/such/dir"),
    ],
)
def test_a_bad_pipeline_layer_is_refused_naming_it(flags, message, tmp_path):
    (tmp_path / "front.py").write_text(FRONT)
    code, log = serving.refused(["front:app", *flags], cwd=tmp_path)
    assert code in (2, 3), log
    assert message in log


def test_a_bad_pipeline_table_names_the_file_and_line(tmp_path):
    (tmp_path / "front.py").write_text(FRONT)
    (tmp_path / "ferrogate.toml").write_text(
        'workers = 1\n[[pipeline]]\nlayer = "compress"\nlevle = 3\n'
    )
    code, log = serving.refused(["front:app"], cwd=tmp_path)
    assert code == 2, log
    assert "ferrogate.toml line 2" in log and '"levle" is not one of its options' in log, log
