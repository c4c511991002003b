"""Certificate reload: SIGHUP (or a changed file with --reload) loads the new certificate for
new connections, requests in flight finish, and a bad new certificate is logged while the old
one goes on serving."""

from __future__ import annotations

import shutil
import signal
import socket
import threading

import pytest
import requests
from cryptography import x509

from tests.serving import free_port, serve
from tests.tls.conftest import client_context


def served_serial(port: int, pki) -> int:
    """The serial number of the certificate a new connection gets."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def wait_for_serial(port: int, pki, serial: int, timeout: float = 15) -> None:
    import time

    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = served_serial(port, pki)
        if seen == serial:
            return
        time.sleep(0.1)
    raise AssertionError(f"served serial {seen}, wanted {serial}")


def serial_of(issued) -> int:
    return x509.load_pem_x509_certificates(issued.cert.read_bytes())[0].serial_number


@pytest.mark.timeout(60)
def test_sighup_loads_a_new_certificate_and_keeps_the_old_one_when_the_new_is_bad(pki, tmp_path):
    first = pki.ca.issue("reload-first")
    second = pki.ca.issue("reload-second", key_type="rsa")
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    port = free_port()
    flags = ("--certfile", str(cert), "--keyfile", str(key), "--workers", "2")
    with serve("tls_app:app", *flags, binds=[f"https://127.0.0.1:{port}"]) as server:
        server.wait_for_workers(2)
        assert served_serial(port, pki) == serial_of(first)

        # A request in flight across the reload finishes on its old connection.
        answer: dict = {}

        def slow() -> None:
            answer["r"] = requests.get(
                f"https://localhost:{port}/sleep?1.5", verify=str(pki.ca.path), timeout=20
            )

        in_flight = threading.Thread(target=slow)
        in_flight.start()
        shutil.copy(second.cert, cert)
        shutil.copy(second.key, key)
        mark = server.log_mark()
        server.send_signal(signal.SIGHUP)
        server.wait_for_log("loaded the TLS certificate again", since=mark)
        wait_for_serial(port, pki, serial_of(second))
        in_flight.join(20)
        assert answer["r"].status_code == 200 and answer["r"].text == "slept"

        # A bad new certificate: logged, and the one in use stays.
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
        mark = server.log_mark()
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(
            r"--certfile .*live\.crt.*the TLS certificate in use is kept", since=mark
        )
        server.wait_for_log("Booting worker", since=mark, count=2)
        for _ in range(5):
            assert served_serial(port, pki) == serial_of(second)
        # A key that does not match the certificate is refused the same way.
        shutil.copy(first.cert, cert)
        mark = server.log_mark()
        server.send_signal(signal.SIGHUP)
        server.wait_for_log(
            r"--keyfile .*live\.key.*the TLS certificate in use is kept", since=mark
        )
        assert served_serial(port, pki) == serial_of(second)


@pytest.mark.timeout(60)
def test_reload_watches_the_certificate_files(pki, tmp_path):
    first = pki.ca.issue("watch-first")
    second = pki.ca.issue("watch-second")
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    port = free_port()
    flags = ("--certfile", str(cert), "--keyfile", str(key), "--reload")
    with serve("tls_app:app", *flags, binds=[f"https://127.0.0.1:{port}"]) as server:
        assert served_serial(port, pki) == serial_of(first)
        server.wait_for_log("--reload: watching")
        shutil.copy(second.key, key)
        shutil.copy(second.cert, cert)
        try:
            wait_for_serial(port, pki, serial_of(second), timeout=20)
        except AssertionError as error:
            raise AssertionError(f"{error}\n--- log:\n{server.log()}") from None
