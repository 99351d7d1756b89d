"""The hook against the emulator, with the connection given as users do (AIRFLOW_CONN_... JSON)."""

from __future__ import annotations

import json

import httpx
import pytest

from airflow_provider_hfep.endpoints import AsyncEndpointsClient, EndpointsClient
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

from tests.conftest import make_spec

pytestmark = pytest.mark.integration


def set_connection(monkeypatch, conn_id: str, **fields) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "hf_inference_endpoints", **fields})
    )


def whoami_calls(cloud) -> int:
    return sum(r["path"] == "/api/whoami-v2" for r in cloud.requests())


def test_default_connection_drives_the_emulator(cloud):
    hook = HuggingFaceEndpointHook()  # hf_inference_endpoints_default, set by the hfep_emulator fixture
    assert hook.hf_conn_id == "hf_inference_endpoints_default"
    assert isinstance(hook.get_conn(), EndpointsClient)
    assert hook.get_conn() is hook.client
    hook.client.create(make_spec("via-hook"))
    assert hook.client.wait("via-hook", poll_interval=0.05, timeout=10).status == "running"
    assert hook.client.pause("via-hook").status == "paused"


def test_no_io_in_init(cloud, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT")
    hook = HuggingFaceEndpointHook("does_not_exist")  # would raise if it looked the connection up
    assert repr(hook) == "HuggingFaceEndpointHook(hf_conn_id='does_not_exist')"
    assert cloud.requests() == []


def test_namespace_resolved_once_when_not_configured(cloud, monkeypatch):
    set_connection(monkeypatch, "no_ns", host=cloud.url, password=cloud.token, extra={"hub_url": cloud.url})
    hook = HuggingFaceEndpointHook("no_ns")
    assert hook.namespace == "demo"
    cloud.seed_endpoint("one")
    hook.client.get("one")
    hook.client.list_endpoints()
    assert hook.namespace == "demo"
    assert whoami_calls(cloud) == 1


def test_namespace_argument_overrides_the_connection(cloud, monkeypatch):
    set_connection(
        monkeypatch,
        "other_ns",
        host=cloud.url,
        password=cloud.token,
        extra={"hub_url": cloud.url, "namespace": "acme"},
    )
    assert HuggingFaceEndpointHook("other_ns").namespace == "acme"
    assert HuggingFaceEndpointHook("other_ns", namespace="demo").namespace == "demo"
    assert whoami_calls(cloud) == 0


async def test_async_client_from_an_async_connection_lookup(cloud):
    hook = HuggingFaceEndpointHook()
    cloud.seed_endpoint("async-ep")
    async with await hook.get_async_client() as client:
        assert isinstance(client, AsyncEndpointsClient)
        assert (await client.get("async-ep")).status == "running"
        assert await client.health_status(await client.get("async-ep")) == 200


def test_test_connection_reports_success_and_failure(cloud, monkeypatch):
    cloud.seed_endpoint("listed")
    ok, message = HuggingFaceEndpointHook().test_connection()
    assert ok
    assert message == f"Connected to {cloud.url} as namespace 'demo': 1 endpoint(s)"
    set_connection(
        monkeypatch,
        "bad_token",
        host=cloud.url,
        password="hf_wrong",
        extra={"hub_url": cloud.url, "namespace": "demo"},
    )
    ok, message = HuggingFaceEndpointHook("bad_token").test_connection()
    assert not ok
    assert "HTTP 401" in message
    assert "hf_wrong" not in message


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"host": "http://127.0.0.1:1"}, "has no token"),
        ({"host": "http://api.example.com", "password": "t"}, "plain http to another machine"),
        ({"host": "https://api.example.com", "password": "t", "extra": {"timeout": "soon"}}, "'timeout'"),
        (
            {"host": "https://api.example.com", "password": "t", "extra": {"verify": "maybe"}},
            "verify: 'maybe' is not a CA bundle",
        ),
    ],
)
def test_bad_connections_are_explained(monkeypatch, fields, text):
    set_connection(monkeypatch, "broken", **fields)
    ok, message = HuggingFaceEndpointHook("broken").test_connection()
    assert not ok
    assert text in message


def test_connection_settings_reach_the_client(cloud, monkeypatch):
    set_connection(
        monkeypatch,
        "tuned",
        host="api.example.com",
        port=8443,
        password="t",
        extra={"timeout": "12.5", "verify": "false", "allow_insecure_http": True, "namespace": "team"},
    )
    hook = HuggingFaceEndpointHook("tuned")
    client = hook.client
    assert client.api_url == "https://api.example.com:8443"
    assert client.timeout == 12.5
    assert HuggingFaceEndpointHook("tuned", timeout=3).client.timeout == 3
    assert hook.namespace == "team"


def test_token_is_masked_in_airflow_logs(cloud):
    from airflow.sdk._shared.secrets_masker import redact

    HuggingFaceEndpointHook().client  # fetching the connection registers the secret
    assert redact(f"sending {cloud.token} now") == "sending *** now"


class Counted(httpx.AsyncBaseTransport):
    """A pool's stand-in that counts the requests sent through it."""

    def __init__(self, pool: httpx.AsyncBaseTransport) -> None:
        self.pool, self.sent = pool, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        return await self.pool.handle_async_request(request)

    async def aclose(self) -> None:
        await self.pool.aclose()


async def test_async_clients_of_one_loop_share_one_pool(cloud, monkeypatch):
    from airflow_provider_hfep.endpoints import transport

    pools: dict[int, Counted] = {}
    shared = transport.shared_async_transport

    def counted(verify: bool | str = True) -> Counted:  # each pool the hook is handed, counted
        pool = shared(verify)
        if id(pool) not in pools:
            pools[id(pool)] = Counted(pool)
        return pools[id(pool)]

    monkeypatch.setattr(transport, "shared_async_transport", counted)
    hook = HuggingFaceEndpointHook()
    cloud.seed_endpoint("pooled")
    first, second = await hook.get_async_client(), await hook.get_async_client()
    assert (await first.get("pooled")).name == "pooled"
    await first.aclose()  # closing one client leaves the shared pool to the other
    assert (await second.get("pooled")).name == "pooled"
    await second.aclose()
    assert [pool.sent for pool in pools.values()] == [2]  # both clients' requests went through one pool
