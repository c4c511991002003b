"""wsgi.file_wrapper edge cases, with every close() of the wrapped object recorded.

Not behind the validator, so the server sees the wrapper itself (and may send a real file
zero-copy). Query:
  path=ABSOLUTE   the file to serve
  tag=ID          each close() of the file-like object appends "ID" to $CLOSE_LOG
  kind=file|bytesio   a buffered real file (default) or an io.BytesIO of its content
  seek=N          seek to N before wrapping
  read=N          read N bytes before wrapping (a buffered file reads ahead past them)
  length=N        the Content-Length the app declares (none when absent)
  blksize=N       the wrapper's block size

The file objects are kept referenced forever (_KEEP), so a close() can only come from the
server, never from the garbage collector finalizing an object the server forgot to close.
"""

import io
import os
from urllib.parse import parse_qs

_KEEP = []


def _record(tag):
    with open(os.environ["CLOSE_LOG"], "a") as f:
        f.write(tag + "\n")


class RecordingFile(io.BufferedReader):
    def __init__(self, path, tag):
        super().__init__(io.FileIO(path, "rb"))
        self.tag = tag

    def close(self):
        _record(self.tag)
        super().close()


class RecordingBytesIO(io.BytesIO):
    def __init__(self, data, tag):
        super().__init__(data)
        self.tag = tag

    def close(self):
        _record(self.tag)
        super().close()


def app(environ, start_response):
    query = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    path, tag = query["path"], query["tag"]
    if query.get("kind") == "bytesio":
        with open(path, "rb") as f:
            filelike = RecordingBytesIO(f.read(), tag)
    else:
        filelike = RecordingFile(path, tag)
    _KEEP.append(filelike)
    if "seek" in query:
        filelike.seek(int(query["seek"]))
    if "read" in query:
        filelike.read(int(query["read"]))
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in query:
        headers.append(("Content-Length", query["length"]))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](filelike, int(query.get("blksize", 8192)))
