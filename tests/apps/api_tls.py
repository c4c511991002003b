"""``ferrogate.make_server(..., certfile=, keyfile=)`` serving https in this process.

python api_tls.py CERT KEY CA prints what a verifying client saw as JSON; a certificate
that does not load prints the ValueError's text.
"""

import json
import ssl
import sys
import threading
import urllib.request
from wsgiref.validate import validator

import ferrogate


def _hello(environ, start_response):
    body = json.dumps([environ["wsgi.url_scheme"], environ.get("HTTPS")]).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


app = validator(_hello)


def main(cert, key, ca):
    try:
        server = ferrogate.make_server("127.0.0.1", 0, app, certfile=cert, keyfile=key)
    except ValueError as error:
        return {"error": str(error)}
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(f"https://localhost:{port}/", context=context, timeout=10) as r:
        seen = json.loads(r.read())
    server.shutdown()
    thread.join(5)
    server.server_close()
    return {"seen": seen}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])), flush=True)
