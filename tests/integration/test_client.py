"""Every client call, sync and async, against the emulator over real HTTP; each error class; retries
under injected faults, counted in the emulator's request log."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from airflow_provider_hfep.endpoints import (
    AuthenticationError,
    ConflictError,
    EndpointFailedError,
    EndpointPausedError,
    EndpointScaledToZeroError,
    EndpointsClient,
    EndpointsTimeoutError,
    EndpointsTransportError,
    EndpointUpdate,
    EndpointUpdateFailedError,
    EndpointWaitTimeoutError,
    InvalidEndpointArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ValidationFailedError,
)

from tests.conftest import FAST_RETRY, make_spec

pytestmark = pytest.mark.integration


def management_calls(cloud, method=None):
    """The logged calls to the endpoints API (``/v2``), whoami left out."""
    return [
        r
        for r in cloud.requests("management")
        if r["path"].startswith("/v2/") and method in (None, r["method"])
    ]


# -- the calls ---------------------------------------------------------------------------------


def test_whoami_and_namespace_resolved_once(api, cloud):
    assert api.whoami()["name"] == "demo"
    assert api.resolve_namespace() == "demo"
    cloud.seed_endpoint("one")
    api.get("one")
    api.get("one")
    assert (
        len([r for r in cloud.requests("management") if r["path"] == "/api/whoami-v2"]) == 2
    )  # whoami() + one resolve


def test_create_get_list_delete(api, cloud):
    created = api.create(make_spec("life"))
    assert (created.name, created.namespace, created.status) == ("life", "demo", "pending")
    assert api.get("life").repository == "openai-community/gpt2"
    assert [e.name for e in api.list_endpoints()] == ["life"]
    api.delete("life")
    with pytest.raises(NotFoundError):
        api.get("life")
    api.delete("life", missing_ok=True)
    with pytest.raises(NotFoundError):
        api.delete("life")


def test_list_star_reports_org_failures_instead_of_swallowing_them(make_client, cloud):
    # the session emulator's user has no org: run a dedicated one with two orgs
    from airflow_provider_hfep.emulator import Emulator

    with Emulator(users=["ana:hf_ana:acme,nobill"], deploy_seconds=0.2) as other:
        other.seed_endpoint("mine", namespace="ana")
        other.seed_endpoint("theirs", namespace="acme")
        other.set_namespace_billing("nobill", False)
        api = make_client("hf_ana", api_url=other.url, hub_url=other.url)
        listing = api.list_endpoints("*")
        assert sorted((e.namespace, e.name) for e in listing) == [("acme", "theirs"), ("ana", "mine")]
        assert list(listing.failures) == ["nobill"]
        assert isinstance(listing.failures["nobill"], AuthenticationError)
        assert "payment method" in str(listing.failures["nobill"])


def test_update_is_a_deep_merge_answered_with_the_old_state_then_read_as_updating(api, cloud):
    cloud.seed_endpoint("upd", state="running")
    # the service holds the endpoint in updating from the PUT on, until the test moves it
    cloud.on("update", "upd", state="updating")
    answer = api.update("upd", EndpointUpdate(max_replica=3, revision="abc"))
    assert answer.raw["compute"]["scaling"] == {
        "minReplica": 1,
        "maxReplica": 3,
    }  # no timeout: omitted, never null
    assert answer.revision == "abc"
    assert answer.repository == "openai-community/gpt2"
    assert answer.status == "running"  # the answer tells the state from before the update
    updating = api.get("upd")
    assert (updating.status, updating.revision, updating.max_replica) == ("updating", "abc", 3)


def test_pause_resume_scale_to_zero(api, cloud):
    cloud.seed_endpoint("cycle", state="running")
    paused = api.pause("cycle")
    assert (paused.status, paused.url) == ("paused", None)
    assert api.pause("cycle").status == "paused"  # idempotent
    assert api.resume("cycle").status == "pending"
    assert api.wait("cycle", poll_interval=0.05, timeout=10).status == "running"
    assert api.resume("cycle").status == "running"  # running_ok: "already running" -> a read
    with pytest.raises(ValidationFailedError, match="already running") as info:
        api.resume("cycle", running_ok=False)
    assert info.value.status_code == 400
    scaled = api.scale_to_zero("cycle")
    assert (scaled.status, scaled.url) == ("scaledToZero", cloud.endpoint_url("cycle"))


def test_hardware_and_health(api, cloud):
    hardware = api.list_hardware()
    assert {(h.vendor, h.instance_type) for h in hardware} >= {("aws", "nvidia-l4"), ("aws", "intel-spr")}
    cloud.seed_endpoint("healthy", state="running")
    endpoint = api.get("healthy")
    assert api.health_status(endpoint) == 200
    cloud.set_state("healthy", "initializing")
    assert api.health_status(endpoint) == 503
    assert api.health_status(api.pause("healthy")) is None  # no URL: nothing to ask


# -- errors ------------------------------------------------------------------------------------


def test_each_error_class(make_client, cloud):
    api = make_client()
    api.create(make_spec("dup"))
    with pytest.raises(ConflictError, match="Endpoint name already exists"):
        api.create(make_spec("dup"))
    with pytest.raises(NotFoundError) as missing:
        api.get("nope")
    assert missing.value.status_code == 404
    assert "nope" in missing.value.server_message
    with pytest.raises(PermissionDeniedError):
        api.get("dup", namespace="someone-else")
    with pytest.raises(AuthenticationError):
        make_client("hf_wrong_token").get("dup", namespace="demo")
    # max_replica below the endpoint's current min_replica: only the server knows the current value
    cloud.seed_endpoint(
        "two",
        compute={
            "accelerator": "cpu",
            "instanceType": "intel-spr",
            "instanceSize": "x2",
            "scaling": {"minReplica": 2, "maxReplica": 2},
        },
    )
    with pytest.raises(
        ValidationFailedError, match="VALIDATION_FAILED: compute.scaling.minReplica"
    ) as invalid:
        api.update("two", EndpointUpdate(max_replica=1))
    assert invalid.value.status_code == 400
    cloud.set_faults([{"scope": "management", "kind": "429"}])
    with pytest.raises(RateLimitedError) as limited:
        api.get("dup")
    assert limited.value.retries == FAST_RETRY.max_retries
    cloud.set_faults([{"scope": "management", "kind": "500"}])
    with pytest.raises(ServerError, match="Internal server error") as server:
        api.get("dup")
    assert server.value.retries == FAST_RETRY.max_retries  # repeated, then the service's own message


def test_bad_input_is_refused_before_any_request(api, cloud):
    cloud.clear_requests()
    with pytest.raises(InvalidEndpointArgumentError, match="endpoint_name"):
        api.get("Bad_Name")
    with pytest.raises(InvalidEndpointArgumentError, match="namespace"):
        api.get("fine", namespace="a/b")
    with pytest.raises(InvalidEndpointArgumentError, match="poll_interval"):
        api.wait("fine", namespace="demo", poll_interval=0)
    assert cloud.requests() == []


def test_client_settings_are_checked():
    with pytest.raises(InvalidEndpointArgumentError, match="token"):
        EndpointsClient("")
    with pytest.raises(InvalidEndpointArgumentError, match="api_url.*plain http"):
        EndpointsClient("t", api_url="http://api.example.com")
    with pytest.raises(InvalidEndpointArgumentError, match="scheme"):
        EndpointsClient("t", api_url="ftp://api.example.com")
    EndpointsClient("t", api_url="http://api.example.com", allow_insecure_http=True).close()
    EndpointsClient("t", api_url="http://localhost:9999").close()
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(404, json={"error": "Endpoint not found"})

    client = EndpointsClient(
        "hf_very_secret", api_url="https://api.example.com/v2", transport=httpx.MockTransport(answer)
    )
    assert client.api_url == "https://api.example.com"
    assert "hf_very_secret" not in repr(client)
    assert "hf_very_secret" not in repr(client.auth)
    with pytest.raises(NotFoundError) as missing:
        client.get("absent", namespace="team")
    assert "hf_very_secret" not in str(missing.value)
    # the token travels in the Authorization header of the API's requests, and in no other header
    [request] = sent
    assert request.headers["authorization"] == "Bearer hf_very_secret"
    assert [k for k, v in request.headers.items() if "hf_very_secret" in v] == ["authorization"]
    client.close()


# -- waiting -----------------------------------------------------------------------------------


def test_wait_returns_once_running_and_healthy(api, cloud):
    api.create(make_spec("waiter"))
    started = time.monotonic()
    endpoint = api.wait("waiter", poll_interval=0.05, timeout=10)
    assert endpoint.status == "running"
    assert time.monotonic() - started >= 0.4
    health_calls = cloud.requests("health")
    assert health_calls
    assert health_calls[-1]["status"] == 200


@pytest.mark.parametrize(
    ("state", "error", "text"),
    [
        ("failed", EndpointFailedError, "failed to deploy: boom"),
        ("updateFailed", EndpointUpdateFailedError, "failed to update: boom"),
        ("paused", EndpointPausedError, "paused: resume it first"),
        ("scaledToZero", EndpointScaledToZeroError, "scaled to zero"),
    ],
)
def test_wait_fails_fast(api, cloud, state, error, text):
    cloud.seed_endpoint("stuck", state="initializing")
    cloud.set_state("stuck", state, "boom")
    started = time.monotonic()
    with pytest.raises(error, match=text):
        api.wait("stuck", poll_interval=0.05, timeout=30)
    assert time.monotonic() - started < 2


def test_wait_times_out_and_waits_for_other_targets(api, cloud):
    cloud.seed_endpoint("slow", state="pending")
    with pytest.raises(EndpointWaitTimeoutError, match=r"waiting for running; still not done after 0 s"):
        api.wait("slow", poll_interval=0.05, timeout=0.2)
    cloud.seed_endpoint("to-pause", state="running")
    api.pause("to-pause")
    assert api.wait("to-pause", target="paused", poll_interval=0.05, timeout=5).status == "paused"


def test_wait_keeps_polling_while_health_is_not_ok(api, cloud):
    cloud.seed_endpoint("flaky", state="running")
    cloud.set_faults([{"scope": "health", "kind": "503", "count": 3}])
    assert api.wait("flaky", poll_interval=0.05, timeout=10).status == "running"
    assert [r["status"] for r in cloud.requests("health")] == [503, 503, 503, 200]


# -- retries under faults ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "502", "503", "reset"])
def test_transient_failures_are_retried(api, cloud, kind):
    cloud.seed_endpoint("sturdy")
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults([{"scope": "management", "kind": kind, "count": 2}])
    assert api.get("sturdy").name == "sturdy"
    calls = [
        (r["status"], r["fault"]) for r in management_calls(cloud, "GET") if r["path"].endswith("/sturdy")
    ]
    assert calls == [(int(kind) if kind.isdigit() else 0, kind)] * 2 + [(200, None)]


def test_timeout_is_retried_then_reported(make_client, cloud):
    api = make_client(timeout=0.3, retry=RetryPolicy(max_retries=1, backoff_base=0.01))
    cloud.seed_endpoint("slowpoke")
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults([{"scope": "management", "kind": "timeout", "count": 1}])
    assert api.get("slowpoke").name == "slowpoke"
    cloud.set_faults([{"scope": "management", "kind": "timeout"}])
    with pytest.raises(EndpointsTimeoutError, match="no answer after 2 tries"):
        api.get("slowpoke")


def test_retry_after_is_honoured(api, cloud):
    cloud.seed_endpoint("polite")
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults([{"scope": "management", "kind": "503", "count": 1, "retry_after": 0.5}])
    api.get("polite")
    first, second = [r for r in management_calls(cloud, "GET") if r["path"].endswith("/polite")]
    assert second["time"] - first["time"] >= 0.45


def test_create_is_not_resent_when_the_lost_answer_had_created_it(api, cloud):
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults(
        [{"scope": "management", "kind": "reset", "method": "POST", "count": 1, "phase": "after"}]
    )
    endpoint = api.create(make_spec("once", tags=["mine-7f3a"]), adopt_tag="mine-7f3a")
    assert endpoint.name == "once"
    assert len(management_calls(cloud, "POST")) == 1  # looked with a GET instead of posting again
    assert [r["method"] for r in management_calls(cloud)][-2:] == ["POST", "GET"]


def test_after_a_lost_create_answer_an_endpoint_without_the_marker_is_not_adopted(api, cloud):
    """Same name and model, but nothing says it is this call's: someone else's endpoint is never taken."""
    api.create(make_spec("theirs"))  # someone's, from the same spec but for the marker
    cloud.set_faults([{"scope": "management", "kind": "reset", "method": "POST", "count": 1}])
    with pytest.raises(ConflictError, match="without this call's marker tag"):
        api.create(make_spec("theirs", tags=["mine-7f3a"]), adopt_tag="mine-7f3a")
    with pytest.raises(InvalidEndpointArgumentError, match="adopt_tag"):
        api.create(make_spec("theirs"), adopt_tag="not-in-the-spec")
    assert len(management_calls(cloud, "POST")) == 2  # theirs, then ours once: never sent twice


def test_create_is_resent_when_it_certainly_did_not_happen(api, cloud):
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults([{"scope": "management", "kind": "reset", "method": "POST", "count": 1}])
    assert api.create(make_spec("twice")).name == "twice"
    assert [r["method"] for r in management_calls(cloud)] == ["POST", "GET", "POST"]
    assert [e.name for e in api.list_endpoints()] == ["twice"]


def test_create_retries_429_as_is(api, cloud):
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults([{"scope": "management", "kind": "429", "method": "POST", "count": 1}])
    api.create(make_spec("limited"))
    assert [r["status"] for r in management_calls(cloud, "POST")] == [429, 200]


def test_retried_delete_that_went_through_is_not_an_error(api, cloud):
    cloud.seed_endpoint("gone")
    api.resolve_namespace()  # the one whoami happens before the faults are armed
    cloud.set_faults(
        [{"scope": "management", "kind": "reset", "method": "DELETE", "count": 1, "phase": "after"}]
    )
    api.delete("gone")  # first DELETE deleted it, its answer was lost, the retry saw 404
    assert [r["status"] for r in management_calls(cloud, "DELETE")] == [0, 404]


def test_unreachable_api_is_a_transport_error(make_client):
    api = make_client(
        api_url="http://127.0.0.1:9",
        hub_url="http://127.0.0.1:9",
        retry=RetryPolicy(max_retries=1, backoff_base=0.01),
    )
    with pytest.raises(EndpointsTransportError, match="no answer after 2 tries"):
        api.get("x", namespace="demo")


def test_request_log_never_holds_the_token(api, cloud):
    cloud.seed_endpoint("secretive")
    api.get("secretive")
    log = json.dumps(cloud.requests())
    assert cloud.token not in log
    assert "[redacted]" in log
