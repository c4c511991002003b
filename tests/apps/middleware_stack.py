"""One app built from every lifted ferrogate.middleware layer, for the case table of
tests/middleware/test_cases.py: served by ferrogate (lifted, and with
--no-native-middleware), by wsgiref and by gunicorn, it must answer each case the same way.
Every Python app in it is wrapped in wsgiref's validator. $STATIC_ROOT is the static
directory (the test makes it)."""

import json
import os
from wsgiref.validate import validator

from ferrogate.middleware import IPFilter, Mount, RateLimit, RequestId, StaticFiles


def echo(name):
    def app(environ, start_response):
        body = json.dumps(
            {
                "app": name,
                "method": environ["REQUEST_METHOD"],
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


api = echo("api")
site = echo("site")

app = RequestId(
    StaticFiles(
        Mount(
            {
                "/api": api,
                "/api/v2/": echo("api_v2"),
                "/private": IPFilter(echo("private"), deny=["127.0.0.0/8", "::1"]),
                "/local": IPFilter(echo("local_only"), allow="127.0.0.1,::1"),
                "/nested": Mount({"/deeper": api}),
                "/limited": RateLimit(echo("limited"), "3/h", key="header:X-Client-Key"),
                "/files": StaticFiles(None, {"/": os.environ["STATIC_ROOT"]}),
                "domain:example.org/": echo("example_host"),
            },
            default=site,
        ),
        {"/static": os.environ["STATIC_ROOT"]},
        max_age=60,
        index=True,
    ),
    trusted=["127.0.0.1"],
)
