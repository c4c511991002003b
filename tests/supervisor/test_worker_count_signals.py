"""SIGTTIN adds a worker and SIGTTOU retires one (never below one), as with gunicorn; each is
logged, the retired worker finishes gracefully, and service goes on (apps/sleepy.py)."""

from __future__ import annotations

import os
import signal

import pytest

from tests.supervisor.load import served_by

pytestmark = pytest.mark.timeout(60)


def test_ttin_adds_a_worker_and_ttou_retires_the_newest_down_to_one(serve):
    with serve("sleepy:app", "--workers", "2") as server:
        first = server.wait_for_workers(2)
        server.send_signal(signal.SIGTTIN)
        three = server.wait_for_workers(3)
        server.wait_for_log(r"SIGTTIN: 3 workers")
        (added,) = set(three) - set(first)
        server.send_signal(signal.SIGTTOU)
        assert sorted(server.wait_for_workers(2, exclude=[added])) == sorted(first)
        # One at a time: signals sent together coalesce into one.
        server.send_signal(signal.SIGTTOU)
        (last,) = server.wait_for_workers(1)
        server.wait_for_log(r"SIGTTOU: 1 workers")
        server.send_signal(signal.SIGTTOU)
        server.wait_for_log(r"SIGTTOU: already at one worker")
        assert server.wait_for_workers(1) == [last]
        assert served_by(server) == last
        # The retirements were planned: nothing was restarted in their place.
        assert "starting a new one" not in server.log(), server.log()


def test_ttin_sent_to_a_worker_does_not_stop_it(serve):
    with serve("sleepy:app") as server:
        (worker,) = server.wait_for_workers(1)
        os.kill(worker, signal.SIGTTIN)
        assert served_by(server) == worker
