"""An unread request body is drained when the response ends, even if the app keeps environ
(and so wsgi.input) alive: the next request on the connection must not wait for a GC."""


def test_unread_body_is_drained_even_when_environ_outlives_the_request(serve):
    with serve("kept_environ:app") as server, server.connect(timeout=5) as conn:
        conn.send_request("POST", "/", body=b"x" * 100_000)
        first = conn.read_response("POST")
        assert (first.status, first.body) == (401, b"refused")
        conn.send_request("GET", "/")
        second = conn.read_response()  # IncompleteResponse (timeout) if the body was not drained
        assert (second.status, second.body) == (200, b"ok")
