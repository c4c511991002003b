"""``time.sleep`` in slices, installed when ``--request-timeout`` is set.

The timeout is an exception raised in the request's thread (CPython's async-exception API),
which CPython only raises between bytecodes: a ``time.sleep(60)`` in C would hold it back
for its whole length. Sleeping in slices of ``SLICE_S`` lets it through within a slice. The
patch is installed before the app is imported, so ``from time import sleep`` gets it too.
"""

from __future__ import annotations

import time
from typing import SupportsIndex, Union

#: Longest uninterruptible piece of a sleep; bounds how late a request timeout can land.
SLICE_S = 0.05

_real_sleep = time.sleep


def _sliced_sleep(seconds: Union[float, SupportsIndex]) -> None:
    """``time.sleep(seconds)``, as interruptible by a request timeout as Python code is."""
    try:
        # float("1") works, time.sleep("1") does not: a string stays the real sleep's.
        length = 0.0 if isinstance(seconds, (str, bytes)) else float(seconds)
    except (TypeError, ValueError):
        length = 0.0  # not a number: the real sleep raises what it raises
    if not length > SLICE_S:  # also NaN and negatives: the real sleep raises as it would
        _real_sleep(seconds)
        return
    deadline = time.monotonic() + length
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        _real_sleep(min(left, SLICE_S))


_sliced_sleep.__doc__ = _real_sleep.__doc__
_sliced_sleep.__name__ = "sleep"


def install() -> None:
    """Replace ``time.sleep`` (once)."""
    if time.sleep is not _sliced_sleep:
        time.sleep = _sliced_sleep
