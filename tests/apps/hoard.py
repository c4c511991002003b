"""/hoard?MIB allocates MIB mebibytes and keeps them for the worker's life (memory that only
grows, as in a leak); any other path answers at once. Answers name the worker pid."""

import json
import os

HOARD: list[bytes] = []


def app(environ, start_response):
    if environ["PATH_INFO"] == "/hoard":
        # Filled with a non-zero byte, so every page is touched and counts as resident.
        HOARD.append(b"\x01" * (int(environ["QUERY_STRING"] or 1) << 20))
    body = json.dumps(
        {"pid": os.getpid(), "hoarded_mib": sum(len(b) for b in HOARD) >> 20}
    ).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
