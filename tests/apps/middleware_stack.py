"""One app built from every lifted ferrogate.middleware layer, for the case table of
tests/middleware/test_cases.py: served by ferrogate (lifted, and with
--no-native-middleware), by wsgiref and by gunicorn, it must answer each case the same way.
Every Python app in it is wrapped in wsgiref's validator."""

import json
from wsgiref.validate import validator

from ferrogate.middleware import IPFilter, Mount, RequestId


def _echo(name):
    def app(environ, start_response):
        body = json.dumps(
            {
                "app": name,
                "script_name": environ["SCRIPT_NAME"],
                "path_info": environ["PATH_INFO"],
                "query": environ.get("QUERY_STRING", ""),
                "request_id": environ.get("HTTP_X_REQUEST_ID"),
            }
        ).encode()
        start_response(
            "200 OK",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return validator(app)


api = _echo("api")
api_v2 = _echo("api_v2")
private = _echo("private")
local_only = _echo("local_only")
site = _echo("site")
example_host = _echo("example_host")

app = RequestId(
    Mount(
        {
            "/api": api,
            "/api/v2/": api_v2,
            "/private": IPFilter(private, deny=["127.0.0.0/8", "::1"]),
            "/local": IPFilter(local_only, allow="127.0.0.1,::1"),
            "/nested": Mount({"/deeper": api}),
            "domain:example.org/": example_host,
        },
        default=site,
    ),
    trusted=["127.0.0.1"],
)

# The same tree without the outer RequestId, for cases that compare ids exactly.
mount_only = app
