"""Fixtures shared by the WSGI tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def close_log(tmp_path_factory):
    """An empty file the closing apps append a line to on each close() (env CLOSE_LOG)."""
    path = tmp_path_factory.mktemp("close") / "close.log"
    path.write_text("")
    return path
