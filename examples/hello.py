"""The demo app `make run` serves: hello world, plus a peek at the WSGI environ."""


def app(environ, start_response):
    if environ["PATH_INFO"] == "/environ":
        lines = [f"{key}: {value!r}" for key, value in sorted(environ.items())]
        body = ("\n".join(lines) + "\n").encode()
    else:
        body = b"Hello, world!"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
