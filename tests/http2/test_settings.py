"""The HTTP/2 settings (--http2-*): what the server announces in its SETTINGS frame, the
defaults, and values at, below and above each limit."""

from __future__ import annotations

import h2.exceptions
import pytest
from hyperframe.frame import SettingsFrame

from tests import serving
from tests.config.test_cli import EXIT_USAGE, run_until_exit
from tests.http2.h2raw import FrameReader, H2Client

APP = "h2_edges:app"
MAX_CONCURRENT_STREAMS = 0x3
INITIAL_WINDOW_SIZE = 0x4
MAX_FRAME_SIZE = 0x5
MAX_HEADER_LIST_SIZE = 0x6


def announced(*flags: str) -> dict[int, int]:
    with serving.serve(APP, *flags) as server:
        client = H2Client(server.port)
        frame = FrameReader(client.sock).next()
        client.close()
    assert isinstance(frame, SettingsFrame), frame
    return dict(frame.settings)


def test_defaults_are_announced():
    settings = announced()
    assert settings[MAX_CONCURRENT_STREAMS] == 100
    assert settings[INITIAL_WINDOW_SIZE] == 262_144
    assert settings[MAX_HEADER_LIST_SIZE] == 65_536
    # 16384 is the protocol's default, which h2 leaves unsaid.
    assert settings.get(MAX_FRAME_SIZE, 16_384) == 16_384


def test_settings_are_announced_as_given():
    settings = announced(
        "--http2-max-concurrent-streams", "7",
        "--http2-initial-stream-window-size", "1048576",
        "--http2-max-frame-size", "65536",
        "--http2-max-header-list-size", "8192",
    )  # fmt: skip
    assert settings[MAX_CONCURRENT_STREAMS] == 7
    assert settings[INITIAL_WINDOW_SIZE] == 1_048_576
    assert settings[MAX_FRAME_SIZE] == 65_536
    assert settings[MAX_HEADER_LIST_SIZE] == 8192


def test_max_concurrent_streams_bounds_streams_in_flight():
    """At the limit every stream is served; the client (told the limit) waits for the rest."""
    with serving.serve(APP, "--http2-max-concurrent-streams", "2") as server:
        client = H2Client(server.port)
        client.events()  # the server's SETTINGS
        first, second = client.request("/slow?0.2"), client.request("/slow?0.2")
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            client.request("/slow?0.2")
        for stream in (first, second):
            assert client.response(stream)[0][":status"] == "200"
        client.close()


@pytest.mark.parametrize(
    "flag, value, ok",
    [
        ("--http2-max-concurrent-streams", "0", False),
        ("--http2-max-concurrent-streams", "1", True),
        ("--http2-max-concurrent-streams", "10000", True),
        ("--http2-max-concurrent-streams", "10001", False),
        ("--http2-max-frame-size", "16383", False),
        ("--http2-max-frame-size", "16384", True),
        ("--http2-max-frame-size", "16777215", True),
        ("--http2-max-frame-size", "16777216", False),
        ("--http2-max-header-list-size", "1023", False),
        ("--http2-max-header-list-size", "1024", True),
        ("--http2-initial-stream-window-size", "1023", False),
        ("--http2-initial-stream-window-size", "2147483647", True),
        ("--http2-initial-stream-window-size", "2147483648", False),
        ("--http2-initial-connection-window-size", "65534", False),
        ("--http2-initial-connection-window-size", "65535", True),
        ("--http", "3", False),
    ],
)
def test_limits_are_checked_at_startup(flag, value, ok):
    code, log = run_until_exit([APP, flag, value, "--check-config"])
    if ok:
        assert code == 0, log
    else:
        assert code == EXIT_USAGE, log
        assert flag in log, log
