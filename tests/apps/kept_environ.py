"""Answers without reading the request body and keeps every environ alive, as frameworks do
through reference cycles (werkzeug stores the request in environ) until the GC runs."""

KEPT = []


def app(environ, start_response):
    KEPT.append(environ)
    body = b"refused" if environ["REQUEST_METHOD"] == "POST" else b"ok"
    start_response("401 Unauthorized" if body == b"refused" else "200 OK",
                   [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
