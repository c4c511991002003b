"""``ferrogate ctl``: send one command to a running master's ``--control-socket`` and print
its answer (``--json`` prints the master's JSON line as it is).

    ferrogate ctl --socket /run/myapp.ctl status
    ferrogate ctl workers +1          # the socket from FERROGATE_CONTROL_SOCKET
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any, Optional, Sequence

#: How long the master may take to answer (``workers N`` spaces its signals by 0.25 s each).
ANSWER_TIMEOUT_S = 60.0

COMMANDS = ("status", "reload", "workers", "kill", "log-reopen")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferrogate ctl", description="Control a running ferrogate master."
    )
    parser.add_argument(
        "--socket",
        default=os.environ.get("FERROGATE_CONTROL_SOCKET"),
        help="the master's --control-socket (default: $FERROGATE_CONTROL_SOCKET)",
    )
    parser.add_argument("--json", action="store_true", help="print the master's JSON answer")
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("argument", nargs="?", help="workers: +1, -1 or N; kill: a worker's pid")
    return parser


def ask(path: str, command: str) -> dict[str, Any]:
    """Send ``command`` to the master listening on ``path``; its answer, decoded."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(ANSWER_TIMEOUT_S)
        conn.connect(path)
        conn.sendall(command.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    decoded: dict[str, Any] = json.loads(answer)
    return decoded


def _print_status(answer: dict[str, Any]) -> None:
    workers = len(answer["workers"])
    print(f"master {answer['master']}, up {answer['uptime_s']:.0f}s, {workers} worker(s)")
    print(f"{'pid':>8} {'rss MiB':>8} {'requests':>9} {'busy':>5}")
    for worker in answer["workers"]:
        values = [worker["pid"], worker["rss_mib"], worker["requests"], worker["threads_busy"]]
        shown = ["-" if value is None else str(value) for value in values]
        print(f"{shown[0]:>8} {shown[1]:>8} {shown[2]:>9} {shown[3]:>5}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``ferrogate ctl ARGV``; the exit code (0: done, 1: refused, 2: usage or no master)."""
    options = _parser().parse_args(argv)
    if not options.socket:
        print("ferrogate ctl: give --socket PATH (the master's --control-socket)", file=sys.stderr)
        return 2
    if options.command in ("workers", "kill") and not options.argument:
        print(f"ferrogate ctl: {options.command} needs an argument", file=sys.stderr)
        return 2
    command = " ".join(filter(None, [options.command, options.argument]))
    try:
        answer = ask(options.socket, command)
    except OSError as error:
        print(f"ferrogate ctl: cannot reach {options.socket}: {error}", file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps(answer))
    elif not answer.get("ok"):
        print(f"ferrogate ctl: {answer.get('error')}", file=sys.stderr)
    elif options.command == "status":
        _print_status(answer)
    else:
        print(answer["done"])
    return 0 if answer.get("ok") else 1
