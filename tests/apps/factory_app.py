"""``create_app(greeting)`` builds the app; each call appends "<pid> <greeting>" to $FACTORY_LOG."""

import os
from wsgiref.validate import validator


def create_app(greeting="hello"):
    with open(os.environ["FACTORY_LOG"], "a") as f:
        f.write(f"{os.getpid()} {greeting}\n")

    def wsgi(environ, start_response):
        body = f"{greeting} from {os.getpid()}".encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return validator(wsgi)
