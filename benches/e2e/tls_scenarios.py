"""The TLS rows of the end-to-end benchmark (issue 13): hello over https with keep-alive, and
hello over https with `Connection: close` (a full handshake per request), for ferrogate
(`--certfile/--keyfile`), granian (`--ssl-certificate/--ssl-keyfile`) and gunicorn
(`--certfile/--keyfile`). The certificate is a self-signed ECDSA P-256 one made once with
Debian's `openssl` (what a client verifies is not what is measured; wrk does not verify).
bench.py merges `scenarios()` into its table and appends `targets()` to the report.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Optional

import apps
from definitions import Scenario, expect_body

NAMES = ("tls_hello", "tls_close")
PEERS = ("ferrogate", "granian", "gunicorn")
CERT_DIR = os.environ.get(
    "BENCH_TLS_DIR", os.path.join(tempfile.gettempdir(), "ferrogate-bench-tls")
)
CERT = os.path.join(CERT_DIR, "cert.pem")
KEY = os.path.join(CERT_DIR, "key.pem")


def ensure_certificate() -> None:
    """A self-signed certificate for 127.0.0.1 and localhost, made on first use."""
    if os.path.exists(CERT) and os.path.exists(KEY):
        return
    os.makedirs(CERT_DIR, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-keyout",
            KEY,
            "-out",
            CERT,
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )


def _tls_args() -> dict:
    return {
        "ferrogate": ["--certfile", CERT, "--keyfile", KEY],
        "granian": ["--ssl-certificate", CERT, "--ssl-keyfile", KEY],
        "gunicorn": ["--certfile", CERT, "--keyfile", KEY],
    }


def scenarios() -> dict:
    ensure_certificate()
    items = [
        Scenario(
            "tls_hello",
            "hello",
            "hello over https (TLS 1.3), keep-alive",
            check=expect_body(apps.HELLO),
            servers=PEERS,
            server_args=_tls_args(),
            tls=True,
        ),
        Scenario(
            "tls_close",
            "hello",
            "hello over https, Connection: close (a TLS handshake per request)",
            wrk_args=["-H", "Connection: close"],
            headers={"Connection": "close"},
            check=expect_body(apps.HELLO),
            servers=PEERS,
            server_args=_tls_args(),
            tls=True,
        ),
    ]
    return {s.name: s for s in items}


def targets(results: dict) -> Optional[str]:
    """The issue's targets, when the rows ran: TLS keep-alive ≥ granian and ≥ 0.75 ×
    ferrogate's plain hello; TLS handshakes ≥ granian."""

    def rps(server: str, scenario: str) -> Optional[float]:
        row = results.get(scenario, {}).get(server)
        return row.get("rps") if row and row.get("ok") else None

    lines = []
    checks = [
        ("tls_hello", "granian", 1.0, "tls_hello"),
        ("tls_hello", "ferrogate", 0.75, "hello"),
        ("tls_close", "granian", 1.0, "tls_close"),
    ]
    for scenario, other, ratio, other_scenario in checks:
        ours, theirs = rps("ferrogate", scenario), rps(other, other_scenario)
        if ours is None or theirs is None:
            continue
        met = "met" if ours >= ratio * theirs else "NOT met"
        lines.append(
            f"- {scenario}: ferrogate {ours:,.0f} req/s vs {ratio:g} × {other} {other_scenario} "
            f"{theirs:,.0f} ({ours / theirs:.2f}×): {met}"
        )
    if not lines:
        return None
    return "\n".join(["## TLS targets (issue 13)", "", *lines])
