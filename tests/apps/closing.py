"""Iterables that record each close() call: one line "<id>" appended to $CLOSE_LOG.

The query string is the id. Valid WSGI, behind the validator (whose wrapper forwards close()).
/normal     two chunks and done
/raise-midway   one chunk, then an exception
/raise-first    an exception before any chunk (so a 500)
/endless    64 KiB chunks until the client goes away
/file-wrapper   a file-like object through wsgi.file_wrapper; its close() is recorded
"""

import io
import os
import time
from wsgiref.validate import validator


def _record(tag):
    with open(os.environ["CLOSE_LOG"], "a") as f:
        f.write(tag + "\n")


class Body:
    def __init__(self, tag, chunks, fail_at=None, endless=False):
        self.tag = tag
        self.chunks = chunks
        self.fail_at = fail_at
        self.endless = endless
        self.served = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.served == self.fail_at:
            raise RuntimeError(f"failing on purpose in {self.tag}")
        if self.endless:
            self.served += 1
            time.sleep(0.001)
            return b"x" * 65536
        if self.served >= len(self.chunks):
            raise StopIteration
        self.served += 1
        return self.chunks[self.served - 1]

    def close(self):
        _record(self.tag)


class RecordingBytesIO(io.BytesIO):
    def __init__(self, tag, data):
        super().__init__(data)
        self.tag = tag

    def close(self):
        _record(self.tag)
        super().close()


def _app(environ, start_response):
    path, tag = environ["PATH_INFO"], environ["QUERY_STRING"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/normal":
        return Body(tag, [b"first ", b"second"])
    if path == "/raise-midway":
        return Body(tag, [b"first ", b"second"], fail_at=1)
    if path == "/raise-first":
        return Body(tag, [b"never"], fail_at=0)
    if path == "/endless":
        return Body(tag, [], endless=True)
    if path == "/file-wrapper":
        return environ["wsgi.file_wrapper"](RecordingBytesIO(tag, b"file-like content"), 4)
    return Body(tag, [b"unknown case"])


app = validator(_app)
