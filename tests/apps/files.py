"""Serves a file through wsgi.file_wrapper; not behind the validator, so the server sees the
wrapper itself (and may send a real file zero-copy).

Query: path=ABSOLUTE&blksize=N&length=1 (send Content-Length)&offset=N (seek first)
       &kind=file|bytesio
"""

import io
import os
from urllib.parse import parse_qs


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    path = query["path"]
    offset = int(query.get("offset", 0))
    blksize = int(query.get("blksize", 8192))
    if query.get("kind") == "bytesio":
        with open(path, "rb") as f:
            filelike = io.BytesIO(f.read())
    else:
        filelike = open(path, "rb")  # noqa: SIM115 (the server closes it via the wrapper)
    filelike.seek(offset)
    headers = [("Content-Type", "application/octet-stream")]
    if query.get("length"):
        headers.append(("Content-Length", str(os.path.getsize(path) - offset)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](filelike, blksize)
