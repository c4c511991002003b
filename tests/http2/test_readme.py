"""The README's HTTP/2 section: every command it shows, run against a server as it says."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests import serving

README = Path(__file__).resolve().parents[2] / "README.md"


def section_commands() -> list[str]:
    text = README.read_text()
    section = text[text.index("### HTTP/2") : text.index("## Middleware")]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block, "the HTTP/2 section has no command block"
    return block.group(1).strip().splitlines()


def test_readme_http2_commands_work():
    commands = section_commands()
    assert commands[0] == "ferrogate app:app --bind 127.0.0.1:8000"
    with serving.serve("h2_edges:app") as server:
        address = f"127.0.0.1:{server.port}"
        for line in commands[1:]:
            argv = shlex.split(line.replace("127.0.0.1:8000", address))
            if argv[0] == "python":
                argv[0] = sys.executable
            done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
            assert done.returncode == 0, (line, done.stderr)
            out = done.stdout
            assert "SERVER_PROTOCOL=HTTP/2" in out or out.strip() == "HTTP/2", (line, out)
