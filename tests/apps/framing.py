"""Response framing cases; not wrapped in the validator, which would hide the one-element list.

/list     one-element list, no Content-Length (the server adds it)
/gen      a generator, no Content-Length (chunked on HTTP/1.1, close on HTTP/1.0)
/short    Content-Length: 10 but only 5 bytes
/long     Content-Length: 5 but 10 bytes (in two chunks, so the head goes out first)
/late     an empty chunk, a one-second pause, then the data (the head must wait for the data)
"""

import time


def app(environ, start_response):
    path = environ["PATH_INFO"]
    text = [("Content-Type", "text/plain")]
    if path == "/list":
        start_response("200 OK", text)
        return [b"exactly one item"]
    if path == "/gen":
        start_response("200 OK", text)
        return (part for part in [b"alpha-", b"beta-", b"gamma"])
    if path == "/short":
        start_response("200 OK", text + [("Content-Length", "10")])
        return (part for part in [b"01234"])
    if path == "/long":
        start_response("200 OK", text + [("Content-Length", "5")])
        return (part for part in [b"01234", b"56789"])
    if path == "/late":
        start_response("200 OK", text)

        def late():
            yield b""
            time.sleep(1)
            yield b"finally some data"

        return late()
    body = b"ok"
    start_response("200 OK", text + [("Content-Length", "2")])
    return [body]
