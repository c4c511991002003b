"""OpenTelemetry under ferrogate: opentelemetry-instrumentation-wsgi's middleware records a
server span per request (with the HTTP attributes and the incoming traceparent), seen with
the SDK's in-memory exporter (apps/otel_app.py)."""

from __future__ import annotations

import json


def test_the_wsgi_middleware_records_spans(serve):
    with serve("otel_app:app", "--threads", "4") as server:
        parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        headers = {"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"}
        assert server.get("/hello?x=1", headers=headers).body == b"hello"
        spans = json.loads(server.get("/spans").body)
        names = [span["name"] for span in spans]
        assert "inner work" in names
        server_span = next(span for span in spans if span["kind"] == "SERVER")
        attributes = server_span["attributes"]
        assert attributes.get("http.method", attributes.get("http.request.method")) == "GET"
        status = attributes.get("http.status_code", attributes.get("http.response.status_code"))
        assert status == 200
        # The trace continues the caller's, as a proxy in front would propagate it.
        assert server_span["trace_id"] == parent_trace
