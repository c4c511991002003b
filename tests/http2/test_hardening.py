"""HTTP/2 denial-of-service classes, each driven through the raw protocol (the h2 package):
rapid reset (CVE-2023-44487), an HPACK / header-list bomb, a CONTINUATION flood, SETTINGS and
PING floods, a client that never opens its window; and a reset stream runs the app's close()."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time

import h2.errors
import h2.events
import h2.settings
import pytest
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame

from tests import serving
from tests.http2.h2raw import FrameReader, H2Client

APP = "h2_edges:app"


def closed_or_goaway(client: H2Client, timeout: float) -> list:
    """Reads until the server closes; the events seen on the way."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            events = client.events(timeout=max(0.1, deadline - time.monotonic()))
        except (ConnectionError, OSError) as error:
            if isinstance(error, socket.timeout):
                continue
            return seen
        except Exception:  # noqa: BLE001 - the h2 state machine may object to what follows GOAWAY
            return seen
        if not events:
            return seen
        seen += events
    raise AssertionError(f"server still open after {timeout}s; events: {seen[-5:]}")


def test_rapid_reset_is_throttled_then_disconnected():
    with serving.serve(APP) as server:
        client = H2Client(server.port)
        sent = 0
        try:
            for _ in range(2000):
                stream = client.request("/slow?0.2")
                client.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
                client.flush()
                sent += 1
        except (ConnectionError, OSError):
            pass
        events = closed_or_goaway(client, timeout=15)
        goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaways, f"no GOAWAY after {sent} rapid resets"
        assert goaways[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        server.wait_for_log(r"\[WARNING\] Sent HTTP/2 client 127\.0\.0\.1:\d+ away")
        # Others are still served.
        fresh = H2Client(server.port)
        headers, _ = fresh.response(fresh.request("/env"))
        assert headers[":status"] == "200"
        fresh.close()


def test_resets_after_the_stream_was_accepted_spend_a_budget():
    """Paced so that each stream reaches the app before its reset (h2's own guard counts only
    resets before accept): past 100 streams + 100 in 10 s, GOAWAY ENHANCE_YOUR_CALM."""
    with serving.serve(APP) as server:
        client = H2Client(server.port)
        with contextlib.suppress(OSError):
            for _ in range(400):
                stream = client.request("/slow?0.2")
                time.sleep(0.003)
                client.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
                client.flush()
        reader = FrameReader(client.sock)
        codes = []
        while (frame := reader.next()) is not None:
            if isinstance(frame, GoAwayFrame):
                codes.append(frame.error_code)
        # Our frames still unread when it closes, the kernel may reset before the GOAWAY.
        assert codes == [h2.errors.ErrorCodes.ENHANCE_YOUR_CALM] or (reader.reset and not codes)
        server.wait_for_log("reset too many streams")
        client.close()


@pytest.mark.parametrize("size, status", [(60_000, "200"), (65_536, "431"), (70_000, "431")])
def test_header_list_over_the_limit_is_refused(size, status):
    """--http2-max-header-list-size 65536 by default: a field counts its name, value and 32
    bytes (RFC 9113 §6.5.2), the pseudo-headers too. The h2 package takes about a second to
    encode one such field (quadratic in its length), so keep-alive is longer than the default
    5 s lest a loaded machine see the server close the waiting connection as idle."""
    with serving.serve(APP, "--keep-alive", "30") as server:
        client = H2Client(server.port)
        headers, _ = client.response(client.request("/env", extra=[("x-big", "v" * size)]))
        assert headers[":status"] == status
        client.close()


def test_header_list_limit_is_a_setting():
    with serving.serve(APP, "--http2-max-header-list-size", "200000") as server:
        client = H2Client(server.port)
        # 150 KB in 15 fields: the h2 package's HPACK encoder is quadratic in one field's
        # length (one 150 KB field took it 4-5 s, past the server's 5 s keep-alive on a loaded
        # machine, so the server rightly closed the connection as idle before the request came).
        big = [(f"x-big-{i}", "v" * 10_000) for i in range(15)]
        headers, _ = client.response(client.request("/env", extra=big))
        assert headers[":status"] == "200"
        client.close()


def test_hpack_bomb_is_refused():
    """One big field in the dynamic table, then referenced many times: tiny on the wire,
    huge decoded. The header list limit counts the decoded size: GOAWAY ENHANCE_YOUR_CALM."""
    with serving.serve(APP) as server:
        client = H2Client(server.port)
        big = "b" * 4000
        # The first request puts the field in the server's dynamic table.
        first = client.request("/env", extra=[("x-bomb", big)])
        assert client.response(first)[0][":status"] == "200"
        # Then 100 references to it: ~200 bytes on the wire, 400 KB decoded.
        client.request("/env", extra=[("x-bomb", big)] * 100)
        reader = FrameReader(client.sock)
        frame = reader.next()
        assert isinstance(frame, GoAwayFrame), frame
        assert frame.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert reader.next() is None
        server.wait_for_log(r"\[WARNING\] Sent HTTP/2 client 127\.0\.0\.1:\d+ away")
        client.close()


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    header = struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
    return header + struct.pack(">I", stream) + payload


def test_continuation_flood_is_cut_off():
    """HEADERS without END_HEADERS, then endless CONTINUATION frames (2024's flood): the
    connection ends once the header list passes its limit, not after the client's last byte."""
    with serving.serve(APP) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        # :method GET, :path /, :scheme http as indexed fields; no END_HEADERS (0x4).
        sock.sendall(frame(1, 0x1, 1, b"\x82\x84\x86"))
        crumb = b"\x40\x05x-pad\x7f\x81\x7f" + b"p" * 254  # literal field, ~270 bytes
        sent = 0
        with pytest.raises(OSError):
            for _ in range(100_000):
                sock.sendall(frame(9, 0, 1, crumb * 50))
                sent += 1
        assert sent * 50 * 270 < 8 * 1024 * 1024, f"read {sent} CONTINUATION frames"
        sock.close()


def test_ping_flood_from_a_client_that_never_reads_is_cut_off():
    with serving.serve(APP, "--socket-timeout", "2") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        ping = frame(6, 0, 0, b"12345678") * 256
        started = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - started < 30:
                sock.sendall(ping)
        assert time.monotonic() - started < 20
        sock.close()


def test_settings_flood_from_a_client_that_never_reads_is_cut_off():
    with serving.serve(APP, "--socket-timeout", "2") as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        settings = frame(4, 0, 0, struct.pack(">HI", 3, 100)) * 256
        started = time.monotonic()
        with pytest.raises(OSError):
            while time.monotonic() - started < 30:
                sock.sendall(settings)
        assert time.monotonic() - started < 20
        sock.close()


def test_client_that_never_opens_its_window_is_cut_off_by_socket_timeout():
    with serving.serve(APP, "--socket-timeout", "2") as server:
        client = H2Client(server.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
        started = time.monotonic()
        stream = client.request("/big?1048576")
        with pytest.raises(ConnectionResetError):
            client.response(stream, timeout=15)
        assert 1.5 < time.monotonic() - started < 10
        assert "opened no window" in server.log()
        client.close()


def test_reset_stream_runs_the_apps_close(tmp_path):
    close_log = tmp_path / "close.log"
    close_log.touch()
    with serving.serve(APP, env={"CLOSE_LOG": str(close_log)}) as server:
        client = H2Client(server.port)
        stream = client.request("/endless?reset-me")
        # Wait for the body to flow, then cancel it.
        while not any(isinstance(e, h2.events.DataReceived) for e in client.events()):
            pass
        client.conn.reset_stream(stream, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        deadline = time.monotonic() + 10
        while "reset-me" not in close_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert close_log.read_text().split() == ["reset-me"]
        client.close()


def test_graceful_stop_sends_goaway_and_lets_open_streams_finish():
    with serving.serve(APP, "--graceful-timeout", "10") as server:
        client = H2Client(server.port)
        stream = client.request("/slow?1.5")
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        reader = FrameReader(client.sock)
        status = None
        body = b""
        goaway_codes = []
        ended = False
        while not ended:
            frame = reader.next()
            assert frame is not None, "closed before the open stream ended"
            if isinstance(frame, GoAwayFrame):
                goaway_codes.append(frame.error_code)
            elif isinstance(frame, HeadersFrame) and frame.stream_id == stream:
                status = dict(reader.decoder.decode(frame.data))[":status"]
            elif isinstance(frame, DataFrame) and frame.stream_id == stream:
                body += frame.data
            ended = frame.stream_id == stream and "END_STREAM" in frame.flags
        assert goaway_codes and set(goaway_codes) == {0}, goaway_codes
        assert (status, body) == ("200", b"slept")
        assert server.wait(10) == 0
        client.close()


def test_idle_connection_gets_goaway_before_the_keep_alive_timeout_closes_it():
    with serving.serve(APP, "--keep-alive", "1") as server:
        client = H2Client(server.port)
        headers, _ = client.response(client.request("/env"))
        assert headers[":status"] == "200"
        started = time.monotonic()
        reader = FrameReader(client.sock)
        codes = []
        while (frame := reader.next()) is not None:
            if isinstance(frame, GoAwayFrame):
                codes.append(frame.error_code)
                # The client answers the PING that follows the first GOAWAY (RFC 9113 §6.8).
            elif frame.type == 0x6 and "ACK" not in frame.flags:
                client.sock.sendall(frame_bytes_ping_ack(frame.opaque_data))
        elapsed = time.monotonic() - started
        assert codes and set(codes) == {h2.errors.ErrorCodes.NO_ERROR}, codes
        assert 0.7 < elapsed < 1.6, elapsed
        client.close()


def frame_bytes_ping_ack(opaque: bytes) -> bytes:
    return frame(6, 0x1, 0, opaque)
