"""The example served the way nova-api was under eventlet: the app loaded from api-paste.ini
with PasteDeploy, then ``wsgi.server(listen(...), app)``, with eventlet swapped for ferrogate
in the imports (``import eventlet`` / ``from eventlet import wsgi`` before).

    python serve_eventlet_style.py [PORT]        (from this directory; default 8774)
"""

import os
import sys

import ferrogate as eventlet
from ferrogate import wsgi
from paste.deploy import loadapp

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8774
    sys.path.insert(0, HERE)  # the osapi package beside this file
    app = loadapp("config:api-paste.ini", relative_to=HERE)
    # What an OpenStack service passes: keep-alive until the client socket timeout.
    wsgi.server(eventlet.listen(("127.0.0.1", port)), app, socket_timeout=900, keepalive=True)


if __name__ == "__main__":
    main()
