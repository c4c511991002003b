"""``ferrogate --paste FILE[#name]`` and ``config:`` app specs, loaded by the real PasteDeploy:
which app is served, ``--paste-global``, the ini's logging sections, ``--reload`` on the ini,
and loading errors that name the file, the section and the factory (exit code 3)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.serving import APPS_DIR, free_port, serve, server_env

PASTE_DIR = APPS_DIR / "paste"
EXIT_APP_LOAD = 3


def run_to_exit(*args: str, cwd: Path = PASTE_DIR, env: dict[str, str] | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess:
    """``python -m ferrogate ARGS`` on a free port, expected to stop by itself."""
    argv = [sys.executable, "-m", "ferrogate", *args, "--bind", f"127.0.0.1:{free_port()}"]
    return subprocess.run(argv, cwd=cwd, env=server_env(env), capture_output=True, text=True,
                          timeout=timeout)


def test_paste_serves_the_main_app_with_ini_defaults():
    with serve("--paste", "basic.ini", cwd=PASTE_DIR) as server:
        response = server.get("/x")
        assert response.status == 200
        assert response.body == b"hello |/x"


def test_paste_name_after_hash_picks_another_app():
    with serve("--paste", "basic.ini#other", cwd=PASTE_DIR) as server:
        assert server.get("/y").body == b"other |/y"


def test_config_app_spec_is_the_same_as_paste():
    with serve(f"config:{PASTE_DIR / 'basic.ini'}#other", "--pythonpath", str(PASTE_DIR),
               cwd=APPS_DIR) as server:
        assert server.get("/z").body == b"other |/z"


def test_paste_path_is_relative_to_the_start_directory_not_chdir(tmp_path):
    with serve("--paste", "paste/basic.ini", "--chdir", str(tmp_path), "--pythonpath",
               str(PASTE_DIR), cwd=APPS_DIR) as server:
        assert server.get("/").body == b"hello |/"


def test_paste_global_fills_global_conf():
    # burst 1 at 1/min: the first request passes, the second is refused by the rate limit.
    flags = ("globals.ini", "--paste-global", "rate_limit=1/min")
    with serve("--paste", *flags, cwd=PASTE_DIR) as server:
        assert server.get("/").status == 200
        assert server.get("/").status == 429


def test_paste_global_missing_names_the_section_and_exits_3():
    result = run_to_exit("--paste", "globals.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "globals.ini: [filter:limit] use = egg:ferrogate#ratelimit:" in result.stderr
    assert "'rate_limit'" in result.stderr


def test_missing_egg_names_file_section_and_factory():
    result = run_to_exit("--paste", "missing_egg.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert (
        "missing_egg.ini: [filter:authtoken] use = egg:keystonemiddleware#auth_token: "
        "no installed distribution named 'keystonemiddleware'"
    ) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_module_names_file_section_and_factory():
    result = run_to_exit("--paste", "missing_module.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert (
        "missing_module.ini: [app:main] paste.app_factory = nosuchmodule.api:factory: "
        "no module named 'nosuchmodule'"
    ) in result.stderr


def test_failing_factory_names_its_section_and_shows_its_traceback():
    result = run_to_exit("--paste", "broken_factory.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert (
        "broken_factory.ini: [filter:broken] paste.filter_factory = "
        "pasteapp:broken_filter_factory: RuntimeError: the broken filter's factory failed"
    ) in result.stderr
    assert "pasteapp.py" in result.stderr  # the factory's own frame, for the user to fix


def test_unknown_filter_option_is_named():
    result = run_to_exit("--paste", "bad_option.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "[filter:limit] use = egg:ferrogate#ratelimit:" in result.stderr
    assert "egg:ferrogate#ratelimit has no option 'bursts' (did you mean 'burst'?)" in (
        result.stderr
    )


def test_missing_section_is_named():
    result = run_to_exit("--paste", "basic.ini#nothere")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "basic.ini: No section 'nothere'" in result.stderr


def test_missing_ini_file_is_named():
    result = run_to_exit("--paste", "nothere.ini")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "nothere.ini' does not exist" in result.stderr


def test_paste_and_an_app_together_is_a_usage_error():
    result = run_to_exit("--paste", "basic.ini", "pasteapp:app_factory")
    assert result.returncode == 2
    assert "--paste and the app" in result.stderr


def test_missing_pastedeploy_names_the_extra(tmp_path):
    # sitecustomize marks paste.deploy as not importable (None in sys.modules makes its import
    # raise ImportError), as on a machine where ferrogate[paste] was not installed.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['paste.deploy'] = None\n")
    result = run_to_exit("--paste", "basic.ini", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "needs PasteDeploy, which is not installed: pip install 'ferrogate[paste]'" in (
        result.stderr
    )


def test_ini_logging_sections_configure_python_logging(tmp_path):
    ini = tmp_path / "logging.ini"
    shutil.copy(PASTE_DIR / "logging.ini", ini)
    with serve("--paste", str(ini), "--pythonpath", str(PASTE_DIR), cwd=tmp_path) as server:
        assert server.get("/logged").status == 200
        log = tmp_path / "logging-test.log"
        deadline = time.monotonic() + 5
        while "served /logged" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the ini's file handler got no line"
            time.sleep(0.05)
        assert "LOGGED INFO pasteapp: pasteapp served /logged" in log.read_text()


def test_reload_watches_the_ini(tmp_path):
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\npaste.app_factory = pasteapp:app_factory\ntext = before\n")
    with serve("--paste", str(ini), "--reload", "--pythonpath", str(PASTE_DIR),
               cwd=tmp_path) as server:
        assert server.get("/").body == b"before |/"
        time.sleep(0.5)  # the watcher is set up after the worker loaded the app
        ini.write_text("[app:main]\npaste.app_factory = pasteapp:app_factory\ntext = after\n")
        deadline = time.monotonic() + 15
        while server.get("/").body != b"after |/":
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)


def test_gunicorn_config_file_paste_keys(tmp_path):
    """gunicorn.conf.py's ``paste`` and ``raw_paste_global_conf`` carry over."""
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(
        f"paste = {str(PASTE_DIR / 'globals.ini')!r}\n"
        "raw_paste_global_conf = ['rate_limit=1/min']\n"
        f"pythonpath = {str(PASTE_DIR)!r}\n"
    )
    with serve("-c", str(conf), cwd=tmp_path) as server:
        assert server.get("/").status == 200
        assert server.get("/").status == 429


@pytest.mark.parametrize("how", ["--paste", "config:"])
def test_sighup_loads_the_ini_again(tmp_path, how):
    ini = tmp_path / "app.ini"
    ini.write_text("[app:main]\npaste.app_factory = pasteapp:app_factory\ntext = before\n")
    spec = ["--paste", "app.ini"] if how == "--paste" else ["config:app.ini"]
    flags = ["--pythonpath", str(PASTE_DIR), "--chdir", str(PASTE_DIR)]
    with serve(*spec, *flags, cwd=tmp_path) as server:
        assert server.get("/").body == b"before |/"
        ini.write_text("[app:main]\npaste.app_factory = pasteapp:app_factory\ntext = after\n")
        server.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while server.get("/").body != b"after |/":
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)


def test_preload_loads_the_ini_in_the_master():
    with serve("--paste", "basic.ini", "--preload", "--workers", "2", cwd=PASTE_DIR) as server:
        assert server.get("/p").body == b"hello |/p"
        assert "Preloaded the app in the master" in server.log()


def test_preload_error_exits_3_before_any_worker():
    result = run_to_exit("--paste", "missing_module.ini", "--preload")
    assert result.returncode == EXIT_APP_LOAD, result.stderr
    assert "no module named 'nosuchmodule'" in result.stderr
    assert "Booting worker" not in result.stderr


def test_run_with_an_app_refuses_a_paste_setting():
    """FERROGATE_PASTE (or a config file's paste) is not ignored when run() gets an app."""
    code = (
        "import ferrogate\n"
        "ferrogate.run(lambda e, s: [], bind='127.0.0.1:0')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PASTE_DIR, capture_output=True,
                            text=True, timeout=30,
                            env=server_env({"FERROGATE_PASTE": "basic.ini"}))
    assert result.returncode == 2, result.stderr
    assert "--paste names an app to load, but ferrogate.run() was given an app object" in (
        result.stderr
    )
