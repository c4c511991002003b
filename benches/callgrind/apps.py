"""Apps whose per-request instruction counts benches/callgrind/count.py measures."""


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


def environ_json(environ, start_response):
    import json

    keys = (
        "REQUEST_METHOD",
        "PATH_INFO",
        "QUERY_STRING",
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "REMOTE_ADDR",
        "HTTP_HOST",
        "HTTP_USER_AGENT",
        "wsgi.url_scheme",
    )
    body = json.dumps({key: environ.get(key) for key in keys}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


BODY_64K = b"x" * (64 * 1024)


def body64k(environ, start_response):
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY_64K)))],
    )
    return [BODY_64K]
