"""An app wrapped in OpenTelemetry's WSGI middleware, its spans recorded by the SDK's
in-memory exporter in each worker: ``/spans`` answers the spans finished so far as JSON
(name, kind, the HTTP attributes, trace id); any other path answers ``hello``."""

import json

from opentelemetry import trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)


def _spans():
    return [
        {
            "name": span.name,
            "kind": span.kind.name,
            "attributes": {k: v for k, v in span.attributes.items()},
            "trace_id": format(span.context.trace_id, "032x"),
        }
        for span in exporter.get_finished_spans()
    ]


def _app(environ, start_response):
    if environ["PATH_INFO"] == "/spans":
        body = json.dumps(_spans()).encode()
    else:
        with trace.get_tracer(__name__).start_as_current_span("inner work"):
            body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = OpenTelemetryMiddleware(_app)
