"""Lifted layers in front of tests/apps/sleepy.py, whose /spin?SECONDS holds the GIL: the
static files under /static ($STATIC_ROOT), /denied (403) and /limited (429 after one) are
answered by the native pipeline, which never waits for the GIL."""

import os

from ferrogate.middleware import IPFilter, Mount, RateLimit, StaticFiles
from sleepy import app as sleepy

app = StaticFiles(
    Mount(
        {
            "/denied": IPFilter(sleepy, deny="127.0.0.0/8"),
            "/limited": RateLimit(sleepy, "1/h", burst=1),
        },
        default=sleepy,
    ),
    {"/static": os.environ["STATIC_ROOT"]},
)
