"""The APP argument: module:attr, module:factory(), path/file.py:attr, bare module (default
names), --chdir, --pythonpath, and failures to load (exit 3 naming the spec)."""

from __future__ import annotations

import pytest

from tests.serving import APPS_DIR, start, wait_for_text

#: Exit code for "app failed to load" (interface contract).
EXIT_APP_LOAD = 3


def body_of(server, path: str = "/") -> str:
    resp = server.get(path)
    assert resp.status == 200, resp.text
    return resp.text


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("hello:custom", "custom"),
        ("hello:app", "app"),
        ("hello", "application"),
        ("only_app", "only app"),
        ("loading/file_app.py:app", "from file"),
        (str(APPS_DIR / "loading" / "file_app.py") + ":app", "from file"),
    ],
)
def test_app_spec_forms_load_the_named_callable(serve, spec, expected):
    with serve(spec) as server:
        assert body_of(server) == expected


def test_factory_is_called_once_per_worker(serve, tmp_path):
    log = tmp_path / "factory.log"
    log.write_text("")
    with serve(
        "factory_app:create_app()", "--workers", "2", env={"FACTORY_LOG": str(log)}
    ) as server:
        workers = server.wait_for_workers(2)
        for _ in range(4):
            assert body_of(server).startswith("hello from ")
        # A worker process exists before it has loaded the app (and one that has not yet
        # answered may still be loading it on a loaded machine): wait for both calls.
        wait_for_text(log.read_text, r"^\d+ hello$", count=2, timeout=20)
        calls = log.read_text().split("\n")[:-1]
    assert sorted(int(line.split()[0]) for line in calls) == sorted(workers), calls


def test_factory_with_literal_arguments(serve, tmp_path):
    log = tmp_path / "factory.log"
    with serve("factory_app:create_app('bonjour')", env={"FACTORY_LOG": str(log)}) as server:
        assert body_of(server).startswith("bonjour from ")


def test_chdir_changes_directory_before_loading(serve, tmp_path):
    with serve("cwd_app:app", "--chdir", str(APPS_DIR), cwd=tmp_path) as server:
        assert body_of(server) == str(APPS_DIR)


def test_pythonpath_makes_module_importable(serve):
    with serve("pythonpath_app", "--pythonpath", "elsewhere") as server:
        assert body_of(server) == "from pythonpath"


def test_pythonpath_with_absolute_directory(serve, tmp_path):
    flags = ("--pythonpath", str(APPS_DIR / "elsewhere"))
    with serve("pythonpath_app:application", *flags, cwd=tmp_path) as server:
        assert body_of(server) == "from pythonpath"


def run_until_exit(args, cwd=APPS_DIR, timeout: float = 30):
    server = start(args, binds=["127.0.0.1:0"], cwd=cwd, wait_ready=False)
    code = server.wait(timeout)
    if code is None:
        server.kill()
        raise AssertionError(f"{args} still running after {timeout}s\n--- log:\n{server.log()}")
    server.kill()
    return code, server.log() + server.stdout()


@pytest.mark.parametrize(
    ("spec", "detail"),
    [
        ("no_such_module_4e1:app", "ModuleNotFoundError"),
        ("broken_import:app", "kaboom at import 77c1"),
        ("hello:no_such_attribute", "no_such_attribute"),
        ("no_default", "application"),
        ("loading/missing_file.py:app", "missing_file.py"),
        ("factory_app:no_such_factory()", "no_such_factory"),
    ],
)
def test_app_that_cannot_load_exits_3_naming_the_spec(spec, detail):
    code, log = run_until_exit([spec])
    assert code == EXIT_APP_LOAD, log
    assert spec in log
    assert detail in log
