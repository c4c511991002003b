"""1 GiB up and 1 GiB down through a lifted Forward cost its worker a few MiB: bodies are
streamed with bounded buffers both ways, never held."""

from __future__ import annotations

import hashlib
import http.client

import pytest

from tests import serving
from tests.apps.upstream import pattern
from tests.middleware.forward_peers import ferrogate_upstream, proxy

GIB = 1 << 30
PIECE = 1 << 20
#: What the transfers may add to the proxy worker's peak RSS (measured: 2.7 MiB lifted, 4.7 MiB
#: through the Python object). A buffered body would add 1 GiB.
MAX_GROWTH_KIB = 16 * 1024


@pytest.mark.timeout(300)
@pytest.mark.parametrize("way", ["lifted", "python"])
def test_one_gib_up_and_down_costs_the_worker_a_few_mib(way):
    with (
        ferrogate_upstream("big") as upstream,
        proxy(way, [upstream.url("")], strip_prefix=True, timeout=60) as p,
    ):
        assert p.server is not None
        (worker,) = p.server.wait_for_workers(1)
        conn = http.client.HTTPConnection(p.host, p.port, timeout=60)
        conn.request("GET", "/proxy/echo")  # the pool, threads and buffers exist
        conn.getresponse().read()
        baseline = serving.proc_status_kib(worker, "VmHWM")

        piece = bytes(range(256)) * (PIECE // 256)
        digest = hashlib.sha256()
        conn.putrequest("POST", "/proxy/echo")
        conn.putheader("Content-Length", str(GIB))
        conn.endheaders()
        for _ in range(GIB // PIECE):
            conn.send(piece)
            digest.update(piece)
        response = conn.getresponse()
        got = response.read()
        assert response.status == 200, got
        assert b'"length": %d' % GIB in got and digest.hexdigest().encode() in got

        conn.request("GET", f"/proxy/bytes?n={GIB}")
        response = conn.getresponse()
        assert response.status == 200
        down = hashlib.sha256()
        received = 0
        while chunk := response.read(PIECE):
            down.update(chunk)
            received += len(chunk)
        assert received == GIB
        expected = hashlib.sha256()
        for sent in pattern(GIB):
            expected.update(sent)
        assert down.hexdigest() == expected.hexdigest()
        conn.close()

        growth = serving.proc_status_kib(worker, "VmHWM") - baseline
        print(f"{way}: the worker's peak RSS grew by {growth} KiB")
        assert growth < MAX_GROWTH_KIB, f"peak RSS grew by {growth} KiB"
