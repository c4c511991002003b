"""Valid WSGI for the HTTP protocol tests: hello, echo the body, own Server header, chunks."""

from wsgiref.validate import validator


def _hello(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/echo":
        chunks = []
        while True:
            chunk = environ["wsgi.input"].read(65536)
            if not chunk:
                break
            chunks.append(chunk)
        body = b"".join(chunks)
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))],
        )
        return [body]
    if path == "/own-server":
        body = b"mine"
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Server", "custom/1.0"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if path == "/cased":
        start_response(
            "200 OK",
            [("content-type", "text/plain"), ("X-UPPER", "u"), ("x-Mixed-case", "m")],
        )
        return [b"cased"]
    if path == "/chunks":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (part for part in [b"one", b"two", b"three"])
    if path.startswith("/n/"):
        body = path[3:].encode("latin-1")
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]
    body = b"Hello, world!"
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Route", "hello")],
    )
    return [body]


app = validator(_hello)
