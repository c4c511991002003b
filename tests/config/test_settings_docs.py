"""docs/settings.md, the README's option table and its gunicorn table are generated from the
settings' declarations (tools/settings_docs.py); this fails when someone changed a setting and
did not regenerate them, and checks the generated text says what a reader needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ferrogate import _ferrogate

ROOT = Path(__file__).resolve().parents[2]


def test_generated_docs_are_fresh():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "settings_docs.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_every_setting_is_documented_with_its_env_and_default():
    doc = (ROOT / "docs" / "settings.md").read_text()
    readme = (ROOT / "README.md").read_text()
    for row in _ferrogate.settings_table():
        if row["hidden"]:
            continue
        assert f"### `{row['name']}`" in doc, row["name"]
        assert f"`{row['env']}`" in doc, row["env"]
        if row["flags"]:
            assert row["flags"][-1] in readme, row["flags"]


def test_every_gunicorn_setting_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("<!-- gunicorn table") : readme.index("<!-- end of gunicorn table")]
    names = [name for name, _, _ in _ferrogate.gunicorn_table()]
    assert len(names) == len(set(names)) >= 90
    for name in names:
        assert f"| `{name}` |" in table, name
