"""Scrapes a ferrogate ``/metrics`` endpoint with prometheus_client's own parser."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(port: int) -> dict[str, list]:
    """Every family's samples, by family name (``ferrogate_requests`` for
    ``ferrogate_requests_total``); fails on a family without HELP."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for family in families.values():
        assert family.documentation, f"{family.name} has no HELP"
    return {name: family.samples for name, family in families.items()}


def value(samples, name: str, **labels) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def wait_for_value(
    port: int, family: str, expected: float, timeout: float = 5.0, **labels
) -> float:
    """Scrapes until ``family``'s counter (``family + "_total"``, summed over the samples
    matching ``labels``) is ``expected``, and returns what it last was. Counters of a
    connection are added as its task ends, a moment after the client sees the end."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(port).get(family, [])
        found = value(samples, family + "_total", **labels)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)
