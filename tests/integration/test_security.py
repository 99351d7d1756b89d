"""The provider's HTTP is safe by default: certificates are verified unless the connection says
otherwise, and the emulator listens on loopback only. (Plain http to another machine is refused: see
the bad-input table and test_client; the emulator's token checks: test_emulator.)"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import (
    EndpointsApiError,
    EndpointsClient,
    EndpointsTransportError,
    RetryPolicy,
)
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.integration

NO_RETRY = RetryPolicy(max_retries=0)
ENDPOINT = {
    "name": "tls",
    "type": "protected",
    "status": {
        "state": "running",
        "url": "https://127.0.0.1/x",
        "createdAt": "2026-11-25T10:00:00.000Z",
        "updatedAt": "2026-11-25T10:00:00.000Z",
    },
    "model": {"repository": "openai-community/gpt2", "framework": "pytorch", "task": "text-generation"},
    "compute": {
        "accelerator": "cpu",
        "instanceType": "intel-spr",
        "instanceSize": "x2",
        "scaling": {"minReplica": 1, "maxReplica": 1},
    },
    "provider": {"vendor": "aws", "region": "us-east-1"},
}


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by nobody anyone trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hfep-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Answer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(ENDPOINT).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """An https server on 127.0.0.1 with a self-signed certificate: its URL and the certificate."""
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def test_certificates_are_verified_by_default(tls_server):
    url, _ = tls_server
    with EndpointsClient("hf_t", api_url=url, hub_url=url, namespace="demo", retry=NO_RETRY) as client:
        with pytest.raises(EndpointsTransportError, match="CERTIFICATE_VERIFY_FAILED"):
            client.get("tls")


def test_verify_can_name_a_ca_bundle_or_be_turned_off(tls_server):
    url, cert = tls_server
    for verify in (str(cert), False):
        with EndpointsClient(
            "hf_t", api_url=url, hub_url=url, namespace="demo", retry=NO_RETRY, verify=verify
        ) as client:
            assert client.get("tls").status == "running"


def test_the_hook_verifies_unless_the_connection_says_otherwise(tls_server, monkeypatch):
    url, cert = tls_server
    for conn_id, extra in (
        ("hf_tls_default", {}),
        ("hf_tls_ca", {"verify": str(cert)}),
        ("hf_tls_off", {"verify": "false"}),
    ):
        connection = {
            "conn_type": "hf_inference_endpoints",
            "host": url,
            "password": "hf_t",
            "extra": {"namespace": "demo", "max_retries": 0, **extra},
        }
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    with pytest.raises(EndpointsTransportError, match="CERTIFICATE_VERIFY_FAILED"):
        HuggingFaceEndpointHook("hf_tls_default").client.get("tls")
    assert HuggingFaceEndpointHook("hf_tls_ca").client.get("tls").status == "running"
    assert HuggingFaceEndpointHook("hf_tls_off").client.get("tls").status == "running"


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP port listens on, from the kernel's table (no traffic sent)."""
    found = set()
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if family == 4:
                    found.add(str(ipaddress.IPv4Address(raw[::-1])))
                else:
                    found.add(
                        str(ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))
                    )
    return found


def test_the_emulator_listens_on_loopback_only():
    with Emulator() as cloud:
        port = int(cloud.url.rsplit(":", 1)[1])
        assert cloud.url.startswith("http://127.0.0.1:")
        assert listening_addresses(port) == {"127.0.0.1"}


def test_no_repr_or_error_carries_the_token(cloud, monkeypatch):
    """Everything a user may print, log or see in a traceback, built from a connection with a known token."""
    from airflow_provider_hfep.endpoints import AsyncEndpointsClient
    from airflow_provider_hfep.operators.endpoint import HuggingFacePauseEndpointOperator
    from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger

    cloud.seed_endpoint("shown", state="running")
    hook = HuggingFaceEndpointHook()
    endpoint = hook.client.get("shown")
    trigger = HuggingFaceEndpointStatusTrigger(
        hf_conn_id="hf_inference_endpoints_default", endpoint_name="shown", namespace="demo", end_time=0.0
    )
    operator = HuggingFacePauseEndpointOperator(task_id="pause", endpoint_name="shown")
    texts = [
        repr(hook),
        repr(hook.client),
        repr(hook.client.auth),
        repr(endpoint),
        json.dumps(endpoint.to_dict()),
        repr(trigger),
        json.dumps(trigger.serialize()),
        repr(operator),
        repr(AsyncEndpointsClient(cloud.token, api_url=cloud.url)),
    ]
    wrong = "hf_" + cloud.token[::-1]  # built, so that no source line in a traceback holds it
    monkeypatch.setenv(
        "AIRFLOW_CONN_HF_WRONG", json.dumps({**json.loads(cloud.airflow_connection()), "password": wrong})
    )
    for call in (
        lambda: HuggingFaceEndpointHook("hf_wrong").client.get("shown"),
        lambda: hook.client.get("absent"),
    ):
        with pytest.raises(EndpointsApiError) as caught:
            call()
        texts += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
    assert [text for text in texts if cloud.token in text or wrong in text] == []
    assert "HTTP 401" in texts[-6]
    assert "not found" in texts[-3]
    # what the service received, the Authorization header aside: no other header, query or body holds it
    received = json.dumps(cloud.requests())
    assert '"authorization": "[redacted]"' in received
    assert cloud.token not in received
    assert wrong not in received
