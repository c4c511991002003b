"""A raw HTTP/2 client on the Python ``h2`` package, for the tests that break the rules.

``H2Client(port)`` connects with prior knowledge (h2c), sends the preface and reads frames as
events; the tests send what they like through ``client.conn`` and ``client.flush()``.
"""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import Frame


class H2Client:
    def __init__(self, port: int, timeout: float = 10.0, settings: dict | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        #: Events read while waiting for another stream's, kept for their own stream.
        self.pending: list[h2.events.Event] = []
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def request(self, path: str, method: str = "GET", end: bool = True, extra=()) -> int:
        stream = self.conn.get_next_available_stream_id()
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":authority", "localhost"),
            (":path", path),
            *extra,
        ]
        self.conn.send_headers(stream, headers, end_stream=end)
        self.flush()
        return stream

    def events(self, timeout: float = 10.0) -> list[h2.events.Event]:
        """Events from the next bytes the server sends; [] once the server has closed."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            return []
        events = self.conn.receive_data(data)
        self.flush()
        return events

    def response(self, stream: int, timeout: float = 10.0) -> tuple[dict[str, str], bytes]:
        """The response on ``stream``: its headers and its whole body."""
        headers: dict[str, str] = {}
        body = bytearray()
        deadline = time.monotonic() + timeout
        backlog, self.pending = self.pending, []
        while time.monotonic() < deadline:
            if backlog:
                events, backlog = backlog, []
            else:
                events = self.events(timeout=max(0.1, deadline - time.monotonic()))
                if not events and self.conn.state_machine.state.name == "CLOSED":
                    break
            for i, event in enumerate(events):
                if getattr(event, "stream_id", None) != stream:
                    self.pending.append(event)
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream)
                    self.flush()
                elif isinstance(event, h2.events.StreamEnded):
                    self.pending += events[i + 1 :] + backlog
                    return headers, bytes(body)
                elif isinstance(event, h2.events.StreamReset):
                    self.pending += events[i + 1 :] + backlog
                    raise ConnectionResetError(f"stream {stream} reset: {event.error_code!r}")
        raise TimeoutError(f"no whole response on stream {stream}")

    def close(self) -> None:
        self.sock.close()


class FrameReader:
    """Frames as they arrive, without h2's state machine (which stops at the first GOAWAY,
    while a graceful stop goes on sending the open streams' frames after it)."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""
        self.decoder = hpack.Decoder()
        #: The server reset the connection (it closed with our frames unread).
        self.reset = False

    def next(self, timeout: float = 10.0) -> Frame | None:
        """The next frame, or None once the server has closed."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                    self.buffer = self.buffer[9 + length :]
                    return frame
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                self.reset = True
                return None
            if not data:
                return None
            self.buffer += data
