"""Apps that raise or return the wrong type; deliberately broken, so not behind the validator."""

import os


def app(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/raise-before-headers":
        raise RuntimeError("boom before headers 9d2e")
    if path == "/raise-after-headers":
        start_response("200 OK", text)

        def body():
            yield b"first part, "
            raise RuntimeError("boom after headers 41ab")

        return body()
    if path == "/str-body":
        start_response("200 OK", text)
        return ["a str, not bytes"]
    if path == "/str-chunk-later":
        start_response("200 OK", text)
        return iter([b"bytes first, ", "then a str"])
    body = str(os.getpid()).encode()
    start_response("200 OK", text + [("Content-Length", str(len(body)))])
    return [body]
