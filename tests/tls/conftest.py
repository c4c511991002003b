"""A test PKI made once per session (tests/tls/certs.py), and TLS servers on free ports."""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.serving import free_port, serve
from tests.tls.certs import Authority, Issued


@dataclass
class Pki:
    ca: Authority
    server: Issued
    client: Issued
    #: A client certificate from a CA the server does not trust.
    stranger: Issued
    expired: Issued
    #: Valid, but for another host than localhost.
    other_host: Issued
    directory: Path


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority(directory)
    other_ca = Authority(directory, "Other CA")
    return Pki(
        ca=ca,
        server=ca.issue("server", chain_in_cert=True),
        client=ca.issue("client", hosts=(), client=True, common_name="alice"),
        stranger=other_ca.issue("stranger", hosts=(), client=True, common_name="mallory"),
        expired=ca.issue("expired", expired=True),
        other_host=ca.issue("other", hosts=("other.example",)),
        directory=directory,
    )


def tls_flags(issued: Issued, *more: str) -> list[str]:
    return ["--certfile", str(issued.cert), "--keyfile", str(issued.key), *more]


@contextlib.contextmanager
def serve_tls(issued: Issued, *flags: str, app: str = "tls_app:app", **kwargs):
    """A server whose one listener is ``https://127.0.0.1:PORT``; ``server.https`` is its
    URL with the host name ``localhost`` (what the certificate names, and sent as SNI)."""
    port = free_port()
    with serve(
        app, *tls_flags(issued, *flags), binds=[f"https://127.0.0.1:{port}"], **kwargs
    ) as server:
        server.https = f"https://localhost:{port}"
        yield server


def client_context(pki: Pki, cert: Issued | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca.path))
    if cert is not None:
        context.load_cert_chain(str(cert.cert), str(cert.key))
    return context
