"""Forward's upstreams in the master's /metrics (--metrics-bind): whether each is in rotation,
and the requests and failures per upstream, counted by every worker in the shared health
table. Scraped with http.client and parsed with prometheus_client's parser."""

from __future__ import annotations

import glob
import http.client
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests import serving
from tests.middleware.forward_peers import ferrogate_upstream, proxy


def scrape(port: int) -> dict[tuple[str, str], dict[str, float]]:
    """{(metric, upstream): {"forward": ..., "value": ...}} for the ferrogate_upstream_* rows."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        conn.close()
    rows = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            if sample.name.startswith("ferrogate_upstream_"):
                rows[(sample.name, sample.labels["upstream"])] = {
                    "forward": sample.labels["forward"],
                    "value": sample.value,
                }
    return rows


def dead_url() -> str:
    return f"http://127.0.0.1:{serving.free_port()}"


@pytest.mark.timeout(60)
def test_requests_and_failures_per_upstream_summed_over_workers():
    dead = dead_url()
    port = serving.free_port()
    with ferrogate_upstream("live") as live_server:
        live = live_server.url("")
        with proxy("lifted", [dead, live], "--workers", "2", "--metrics-bind",
                   f"127.0.0.1:{port}", strip_prefix=True, max_fails=1, fail_timeout=60) as p:
            assert p.server is not None
            p.server.wait_for_workers(2)
            for _ in range(10):
                # Each answered by the live one: a refused connection moves on.
                assert requests.get(p.url("/proxy/echo")).json()["name"] == "live"
            rows = scrape(port)
    assert rows[("ferrogate_upstream_requests_total", live)]["value"] == 10
    assert rows[("ferrogate_upstream_failures_total", live)]["value"] == 0
    assert rows[("ferrogate_upstream_up", live)] == {"forward": "/proxy", "value": 1}
    # The first failure took it out for every worker (max_fails=1, a shared table).
    failures = rows[("ferrogate_upstream_failures_total", dead)]["value"]
    assert failures == 1
    assert rows[("ferrogate_upstream_requests_total", dead)]["value"] == failures
    assert rows[("ferrogate_upstream_up", dead)]["value"] == 0


@pytest.mark.timeout(60)
def test_a_killed_upstream_shows_up_0_and_a_live_one_1():
    port = serving.free_port()
    with ferrogate_upstream("stays") as stays, ferrogate_upstream("killed") as killed:
        urls = [stays.url(""), killed.url("")]
        with proxy("lifted", urls, "--metrics-bind", f"127.0.0.1:{port}", strip_prefix=True,
                   health="/health", health_interval=0.3, health_passes=1) as p:
            assert requests.get(p.url("/proxy/echo")).status_code == 200  # starts the probes
            rows = scrape(port)
            assert [rows[("ferrogate_upstream_up", url)]["value"] for url in urls] == [1, 1]
            killed.kill()  # the master and its worker, at once
            deadline = time.monotonic() + 10
            while scrape(port)[("ferrogate_upstream_up", urls[1])]["value"] != 0:
                assert time.monotonic() < deadline, "the killed upstream never showed up=0"
                time.sleep(0.1)
            assert scrape(port)[("ferrogate_upstream_up", urls[0])]["value"] == 1


def test_no_forward_no_upstream_families():
    port = serving.free_port()
    with serving.serve("hello:app", "--metrics-bind", f"127.0.0.1:{port}"):
        assert scrape(port) == {}


@pytest.mark.timeout(90)
def test_a_reload_that_changes_the_upstreams_drops_the_old_rows(tmp_path):
    port = serving.free_port()
    upstream_file = tmp_path / "upstream.txt"
    with ferrogate_upstream("old") as old, ferrogate_upstream("new") as new:
        upstream_file.write_text(old.url(""))
        env = {"FORWARD_UPSTREAM_FILE": str(upstream_file)}
        with serving.serve("forward_reloaded:app", "--metrics-bind", f"127.0.0.1:{port}",
                           env=env) as server:
            before = server.wait_for_workers(1)
            assert requests.get(server.url("/echo")).json()["name"] == "old"
            assert scrape(port)[("ferrogate_upstream_requests_total", old.url(""))][
                "value"] == 1
            pattern = f"/dev/shm/ferrogate-ratelimit-{server.pid}-forward-*"
            tables_before = set(glob.glob(pattern))
            upstream_file.write_text(new.url(""))
            server.send_signal(signal.SIGHUP)
            server.wait_for_workers(1, exclude=before, timeout=30)
            assert requests.get(server.url("/echo")).json()["name"] == "new"
            rows = scrape(port)
            assert rows[("ferrogate_upstream_requests_total", new.url(""))]["value"] == 1
            # The old layer's table is still there (the master removes tables at exit), but
            # no live worker opened it: its rows are gone, not frozen at their last values.
            assert ("ferrogate_upstream_up", old.url("")) not in rows, rows
            tables_after = set(glob.glob(pattern))
            assert tables_before < tables_after, (tables_before, tables_after)
            assert len(tables_after - tables_before) == 1, (tables_before, tables_after)
