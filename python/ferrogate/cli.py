"""The ``ferrogate`` console command: hands argv to the Rust supervisor, or, for
``ferrogate ctl ...``, talks to a running master's control socket (``_control.py``)."""

from __future__ import annotations

import sys
from typing import NoReturn, Optional, Sequence

from . import _ferrogate


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    """Parse the command line, serve until stopped, and exit with the server's exit code."""
    args = list(sys.argv if argv is None else argv)
    if args[1:2] == ["ctl"]:
        from ._control import main as control

        sys.exit(control(args[2:]))
    args[0] = "ferrogate"
    sys.exit(_ferrogate.main(args))
