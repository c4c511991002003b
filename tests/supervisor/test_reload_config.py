"""SIGHUP reads the settings again (gunicorn's reload): a changed config file applies to the
workers the reload starts; settings used only at startup (bind, pid, user, ...) are named in
a warning and wait for a restart; a config file that no longer reads leaves every setting as
it was and the server serving."""

from __future__ import annotations

import signal

import pytest

from tests.serving import serve, wait_for_text


def reload(server, config, text: str) -> int:
    """Writes ``text`` into ``config``, sends SIGHUP; returns the log mark from before it."""
    config.write_text(text)
    mark = server.log_mark()
    server.send_signal(signal.SIGHUP)
    return mark


@pytest.mark.timeout(60)
def test_a_changed_worker_count_applies_on_sighup(tmp_path):
    config = tmp_path / "ferrogate.toml"
    config.write_text("workers = 1\n")
    with serve("hello:app", "-c", str(config)) as server:
        old = server.wait_for_workers(1)
        mark = reload(server, config, "workers = 3\n")
        server.wait_for_log(r"SIGHUP: changed settings: workers", since=mark)
        new = server.wait_for_workers(3, exclude=old, timeout=20)
        assert len(new) == 3
        assert server.get("/").status == 200


@pytest.mark.timeout(60)
def test_a_new_access_log_applies_to_the_new_workers(tmp_path):
    config = tmp_path / "ferrogate.toml"
    config.write_text("workers = 1\n")
    access = tmp_path / "access.log"
    with serve("hello:app", "-c", str(config)) as server:
        old = server.wait_for_workers(1)
        reload(server, config, f"workers = 1\naccess_log = {str(access)!r}\n")
        server.wait_for_workers(1, exclude=old, timeout=20)
        assert server.get("/logged-after-reload").status == 200
        wait_for_text(lambda: access.read_text() if access.exists() else "", "logged-after-reload")


@pytest.mark.timeout(60)
def test_startup_only_settings_are_named_and_wait_for_a_restart(tmp_path):
    config = tmp_path / "ferrogate.toml"
    config.write_text("workers = 1\n")
    with serve("hello:app", "-c", str(config)) as server:
        old = server.wait_for_workers(1)
        mark = reload(server, config, "workers = 1\nbacklog = 64\ntimeout = 20\n")
        server.wait_for_log(
            r"SIGHUP: backlog changed, which takes effect only when ferrogate restarts", since=mark
        )
        server.wait_for_log(r"SIGHUP: changed settings: timeout", since=mark)
        server.wait_for_workers(1, exclude=old, timeout=20)
        assert server.get("/").status == 200


@pytest.mark.timeout(60)
def test_a_config_that_no_longer_reads_keeps_the_old_settings(tmp_path):
    config = tmp_path / "ferrogate.toml"
    config.write_text("workers = 2\n")
    with serve("hello:app", "-c", str(config)) as server:
        old = server.wait_for_workers(2)
        mark = reload(server, config, "workers = 2\nworker = 3\n")
        line = server.wait_for_log(
            r"SIGHUP: the settings cannot be read again, so they stay as they were: (.*)",
            since=mark,
        )[0]
        assert "did you mean `workers`" in line.group(1)
        # The code is reloaded all the same, with the settings as they were.
        server.wait_for_workers(2, exclude=old, timeout=20)
        assert server.get("/").status == 200
