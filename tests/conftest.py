"""Shared fixtures: a free port, and ``serve(spec, *flags)`` to run ferrogate for a block.

Servers are real ``python -m ferrogate`` processes started in tests/apps (see serving.py).
Suites share one server per module where the flags are the same (module-scoped fixtures).
"""

from __future__ import annotations

import pytest

from tests import serving

#: Per-test limit for tests that do not set their own with @pytest.mark.timeout.
DEFAULT_TEST_TIMEOUT_S = 60


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


@pytest.fixture
def free_port() -> int:
    return serving.free_port()


@pytest.fixture(scope="session")
def serve():
    """``with serve("module:app", "--threads", "4") as server: ...`` (any fixture scope)."""
    return serving.serve
