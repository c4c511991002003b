"""Drives ``ferrogate.make_server`` the way wsgiref users do and prints what it saw as JSON.

python api_make_server.py SCENARIO; the test asserts on the printed observations. Run as a
separate process so a server that hangs cannot hang the test run (every wait has a timeout).
"""

import http.client
import json
import socket
import sys
import threading
import time
from wsgiref.validate import validator

import ferrogate


def _hello(environ, start_response):
    body = f"hello {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


app = validator(_hello)


def get(port, path, timeout=5.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return [resp.status, resp.read().decode()]
    except OSError as exc:
        return ["error", type(exc).__name__]
    finally:
        conn.close()


def refuses(port):
    with socket.socket() as sock:
        sock.settimeout(2)
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


def in_thread(target, *args):
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=target(*args)), daemon=True)
    thread.start()
    return thread, result


def serve_forever_in_thread():
    server = ferrogate.make_server("127.0.0.1", 0, app)
    host, port = server.server_address
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    bodies = [get(port, "/one"), get(port, "/two")]
    started = time.monotonic()
    server.shutdown()
    thread.join(5)
    shutdown_s = time.monotonic() - started
    server.server_close()
    return {
        "address": [host, port],
        "address_types": [type(host).__name__, type(port).__name__],
        "bodies": bodies,
        "thread_stopped": not thread.is_alive(),
        "shutdown_s": shutdown_s,
        "refused_after_close": refuses(port),
    }


def handle_request():
    server = ferrogate.make_server("127.0.0.1", 0, app)
    port = server.server_address[1]
    first, first_result = in_thread(get, port, "/first")
    server.handle_request()
    first.join(5)
    second, second_result = in_thread(get, port, "/second", 10.0)
    time.sleep(0.7)
    second_waited = second.is_alive()  # nobody is serving between handle_request calls
    server.handle_request()
    second.join(5)
    server.server_close()
    return {
        "first": first_result.get("value"),
        "second_waited": second_waited,
        "second": second_result.get("value"),
    }


def context_manager():
    with ferrogate.make_server("127.0.0.1", 0, app) as server:
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        body = get(port, "/ctx")
        server.shutdown()
        thread.join(5)
    return {"body": body, "refused_after_exit": refuses(port)}


def wsgiref_signature():
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

    server = ferrogate.make_server("127.0.0.1", 0, app, WSGIServer, WSGIRequestHandler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    body = get(port, "/sig")
    server.shutdown()
    thread.join(5)
    server.server_close()
    return {"body": body}


SCENARIOS = {
    "serve_forever_in_thread": serve_forever_in_thread,
    "handle_request": handle_request,
    "context_manager": context_manager,
    "wsgiref_signature": wsgiref_signature,
}

if __name__ == "__main__":
    print(json.dumps(SCENARIOS[sys.argv[1]]()), flush=True)
