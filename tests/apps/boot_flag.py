"""Fails to import (a Python exception: the worker exits as a boot failure) while the file
named by $BOOT_FAIL_FLAG exists; otherwise answers its pid."""

import os

if os.path.exists(os.environ["BOOT_FAIL_FLAG"]):
    raise RuntimeError("boot_flag: the flag file exists")


def app(environ, start_response):
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
