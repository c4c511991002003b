"""Instructions per proxied request: count.py with a hello upstream in front of it.

Starts one ferrogate worker serving apps.py's `upstream` (not under valgrind: only the proxy
is counted), then runs count.py's measurement on a ferrogate whose app is native_apps'
lifted `Forward` pointing at it. The proxy's cost per request is what remains (issue 16).

    .venv/bin/python benches/callgrind/count_proxy.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--server-arg", action="append", default=[])
    args = parser.parse_args()
    port = count.free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "ferrogate", "apps:upstream", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--log-level", "error"],
        cwd=count.APPS_DIR, stderr=subprocess.DEVNULL,
    )
    os.environ["BENCH_UPSTREAM"] = f"http://127.0.0.1:{port}"
    try:
        count.wait_for_port(port)
        said = count.per_request("native_apps:forward", args.requests, "/", args.server_arg,
                                 "proxied request")
    finally:
        upstream.send_signal(signal.SIGTERM)
        upstream.wait(timeout=60)
    print(f"proxy_hello: {said}")

if __name__ == "__main__":
    main()
