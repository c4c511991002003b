"""``python -m ferrogate APP [options]``: the same as the ``ferrogate`` command."""

from .cli import main

main()
