"""Paste Deploy app factories (``egg:ferrogate#forward``), registered as ``paste.app_factory``
entry points in pyproject.toml. A factory gets the ini section's keys as strings."""

from __future__ import annotations

import re
from typing import Any

from . import middleware
from ._pipeline import _option_value


def forward(global_conf: dict[str, str], upstreams: str, **options: str) -> Any:
    """``use = egg:ferrogate#forward`` with ``upstreams`` (URLs separated by spaces, commas or
    new lines) and any keyword of :class:`ferrogate.middleware.Forward` as a key
    (``strategy = least_conn``, ``strip_prefix = true``, ``timeout = 5``)."""
    urls = [url for url in re.split(r"[\s,]+", upstreams) if url]
    keywords: dict[str, Any] = {name: _option_value(value) for name, value in options.items()}
    if "health" in keywords:
        keywords["health"] = str(keywords["health"])
    return middleware.Forward(urls, **keywords)
