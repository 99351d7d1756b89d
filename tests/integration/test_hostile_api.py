"""
A broken or hostile API in front of the client: every answer is judged, nothing secret leaves, nothing
grows without bound. The client talks to an ``httpx.MockTransport`` playing the API (a proxy's HTML
page, a lying cursor, a redirect to another host...); what it sends is recorded, so a test sees that
no request went where it must not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from airflow_provider_hfep.endpoints import (
    AsyncEndpointsClient,
    EndpointsClient,
    EndpointsError,
    EndpointsTimeoutError,
    InvalidEndpointArgumentError,
    RetryPolicy,
    exchange as exchange_module,
)
from airflow_provider_hfep.endpoints.errors import (
    AnswerTooLargeError,
    MalformedAnswerError,
    RedirectRefusedError,
)
from airflow_provider_hfep.endpoints.waiting import Outcome

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration

API = "https://api.endpoints.example"
NO_RETRY = RetryPolicy(max_retries=0)


def endpoint_json(state: Any = "running", **changes: Any) -> dict[str, Any]:
    raw = {
        "name": "ep",
        "type": "authenticated",
        "tags": [],
        "status": {
            "state": state,
            "url": "https://ep.example.cloud",
            "message": "",
            "createdAt": "2026-12-01T00:00:00.000Z",
            "updatedAt": "2026-12-01T00:00:00.000Z",
        },
        "model": {"repository": "openai-community/gpt2", "framework": "pytorch", "image": {"tgi": {}}},
        "compute": {"instanceType": "nvidia-l4", "instanceSize": "x1", "scaling": {"minReplica": 1}},
        "provider": {"vendor": "aws", "region": "us-east-1"},
    }
    raw.update(changes)
    return raw


class HostileApi:
    """Plays the API from a function of the request; records every request it got."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        if request.url.path.endswith("/health"):
            return httpx.Response(200)
        return self.answer(request)

    def hosts(self) -> set[str]:
        return {request.url.host for request in self.sent}


@pytest.fixture(params=["sync", "async"])
def make_client(request):
    """A client of either flavour over a MockTransport, its calls run to completion in the test."""
    loop = asyncio.new_event_loop()
    opened: list[Any] = []

    def make(api: HostileApi, **settings: Any) -> Any:
        settings = {"api_url": API, "hub_url": API, "namespace": "acme", "retry": NO_RETRY, **settings}
        if request.param == "sync":
            client = EndpointsClient("hf_secret_token", transport=httpx.MockTransport(api), **settings)
            opened.append(client.close)
            return client
        aclient = AsyncEndpointsClient("hf_secret_token", transport=httpx.MockTransport(api), **settings)
        opened.append(lambda: loop.run_until_complete(aclient.aclose()))

        class Blocking:
            def __getattr__(self, name: str) -> Any:
                method = getattr(aclient, name)
                if not asyncio.iscoroutinefunction(method):
                    return method
                return lambda *a, **k: loop.run_until_complete(method(*a, **k))

        return Blocking()

    yield make
    for close in opened:
        close()
    loop.close()


# -- malformed answers: a typed error naming the route, the status and the body ------------------

MALFORMED = {
    "a proxy's HTML page with status 200": httpx.Response(
        200, text="<html><body>Proxy login</body></html>", headers={"content-type": "text/html"}
    ),
    "invalid JSON": httpx.Response(200, text='{"name": "ep", ', headers={"content-type": "application/json"}),
    "a list": httpx.Response(200, json=[endpoint_json()]),
    "JSON without status": httpx.Response(
        200, json={k: v for k, v in endpoint_json().items() if k != "status"}
    ),
    "a state that is a number": httpx.Response(200, json=endpoint_json(state=5)),
    "a status that is a string": httpx.Response(200, json={**endpoint_json(), "status": "running"}),
    "a URL that is a number": httpx.Response(
        200, json={**endpoint_json(), "status": {**endpoint_json()["status"], "url": 7}}
    ),
    "nested a million deep": httpx.Response(
        200, text="[" * 1_000_000 + "]" * 1_000_000, headers={"content-type": "application/json"}
    ),
}


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_answer_is_a_typed_error_naming_route_status_and_body(make_client, answer):
    client = make_client(HostileApi(lambda request: answer))
    with pytest.raises(MalformedAnswerError) as raised:
        client.get("ep")
    message = str(raised.value)
    assert "GET /v2/endpoint/acme/ep" in message
    assert message.startswith("HTTP 200")
    assert "body: " in message
    assert len(message) < 700  # the body is quoted, cut: never a megabyte of brackets


def test_malformed_answers_end_a_wait_with_an_error_not_a_crash(make_client):
    api = HostileApi(
        lambda request: httpx.Response(200, text="<html>", headers={"content-type": "text/html"})
    )
    client = make_client(api)
    result = client.watch("ep", end_time=time.time() + 30, poll_interval=0.01, max_consecutive_errors=3)
    assert result.status is Outcome.ERROR
    assert "4 failed reads in a row" in result.message
    assert "content type 'text/html'" in result.message
    assert len(api.sent) == 4  # tolerated three in a row, then gave up: no hang


def test_an_unknown_state_is_named_and_ends_the_wait_at_its_deadline(make_client, caplog):
    client = make_client(
        HostileApi(lambda request: httpx.Response(200, json=endpoint_json(state="hibernating")))
    )
    with caplog.at_level("INFO"):
        result = client.watch("ep", end_time=time.time() + 0.3, poll_interval=0.05)
    assert result.status is Outcome.TIMEOUT
    assert "'hibernating', which this provider does not know" in result.message
    assert "'hibernating'" in caplog.text


# -- the token and the secrets go only where they belong --------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "HTTP", "Http"])
def test_the_health_check_never_sends_the_token_over_plain_http_to_another_machine(make_client, scheme):
    url = f"{scheme}://ep.example.cloud"
    api = HostileApi(
        lambda request: httpx.Response(
            200, json=endpoint_json(status={**endpoint_json()["status"], "url": url})
        )
    )
    result = make_client(api).watch("ep", end_time=time.time() + 5, poll_interval=0.01)
    assert result.status is Outcome.ERROR
    assert "Refused to send the token" in result.message
    assert api.hosts() == {"api.endpoints.example"}  # the health route was never asked


def test_plain_http_to_loopback_or_with_the_setting_is_allowed(make_client):
    for url, options in (
        ("http://127.0.0.1:9", {}),
        ("http://ep.example.cloud", {"allow_insecure_http": True}),
    ):
        api = HostileApi(
            lambda request, url=url: httpx.Response(
                200, json=endpoint_json(status={**endpoint_json()["status"], "url": url})
            )
        )
        result = make_client(api, **options).watch("ep", end_time=time.time() + 5, poll_interval=0.01)
        assert result.status is Outcome.SUCCESS
        assert any(request.url.path.endswith("/health") for request in api.sent)


@pytest.mark.parametrize("base", ["HTTP://api.example.com", "Http://api.example.com"])
def test_a_capitalised_plain_http_api_url_is_refused_like_a_lowercase_one(base):
    with pytest.raises(InvalidEndpointArgumentError, match="api_url.*plain http"):
        EndpointsClient("hf_secret_token", api_url=base)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_an_update_redirected_elsewhere_is_refused_and_its_secrets_stay_home(make_client, status):
    from airflow_provider_hfep.endpoints import EndpointUpdate

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.endpoints.example" and request.method == "PUT":
            return httpx.Response(status, headers={"location": "http://collector.example/steal"})
        return httpx.Response(200, json=endpoint_json())

    api = HostileApi(answer)
    with pytest.raises(RedirectRefusedError, match="collector.example/steal"):
        make_client(api).update("ep", EndpointUpdate(secrets={"DB_PASSWORD": "s3cr3t-value"}))
    assert api.hosts() == {"api.endpoints.example"}
    assert [request.method for request in api.sent] == ["PUT"]  # the body went out once, to the API


def test_a_read_redirected_within_the_api_is_followed_and_one_elsewhere_is_not(make_client):
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/endpoint/acme/ep":
            return httpx.Response(302, headers={"location": "/v2/endpoint/acme/ep-moved"})
        if request.url.path == "/v2/endpoint/acme/ep-moved":
            return httpx.Response(200, json=endpoint_json())
        return httpx.Response(302, headers={"location": "https://elsewhere.example/v2/endpoint/acme/x"})

    api = HostileApi(answer)
    client = make_client(api)
    assert client.get("ep").name == "ep"
    with pytest.raises(RedirectRefusedError, match="elsewhere.example"):
        client.get("other")
    assert "elsewhere.example" not in api.hosts()


# -- everything is bounded --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "name"),
    [("..", "x"), (".", "x"), ("acme\n", "x"), ("acme", "x\n"), ("ac..me", "x"), ("acme", "..")],
)
def test_names_are_checked_whole_before_any_request(make_client, namespace, name):
    api = HostileApi(lambda request: httpx.Response(200, json=endpoint_json()))
    with pytest.raises(InvalidEndpointArgumentError):
        make_client(api).delete(name, namespace=namespace)
    assert api.sent == []


@pytest.mark.parametrize(
    ("metric", "repo_id"), [("../../x", None), ("replica-status/..", None), (None, "../../v2")]
)
def test_metric_names_and_repository_ids_cannot_climb_the_url(make_client, metric, repo_id):
    api = HostileApi(lambda request: httpx.Response(200, json=endpoint_json()))
    client = make_client(api)

    def call() -> object:
        if metric is not None:
            return client.metrics("ep", metric, start=0, end=60)
        return client.deploy_from_catalog(repo_id=repo_id)

    with pytest.raises(InvalidEndpointArgumentError):
        call()
    assert api.sent == []


def test_names_read_from_whoami_are_checked_too(make_client):
    api = HostileApi(lambda request: httpx.Response(200, json={"type": "user", "name": "..", "orgs": []}))
    with pytest.raises(InvalidEndpointArgumentError, match="whoami name"):
        make_client(api, namespace=None).delete("ep")
    assert [request.url.path for request in api.sent] == ["/api/whoami-v2"]  # no DELETE went out


def test_a_listing_that_hands_out_fresh_cursors_forever_stops_at_max_pages(make_client):
    pages = iter(range(10**9))
    api = HostileApi(
        lambda request: httpx.Response(200, json={"items": [], "nextCursor": f"cursor-{next(pages)}"})
    )
    with pytest.raises(EndpointsError, match="still more pages after max_pages=7"):
        make_client(api).list_endpoints(max_pages=7)
    assert len(api.sent) == 7


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives in pieces, as from the network (not loaded at once, as ``json=`` would be)."""

    def __init__(self, body: bytes, size: int = 64 * 1024) -> None:
        self.pieces = [body[i : i + size] for i in range(0, len(body), size)]

    def __iter__(self):
        yield from self.pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece


def test_an_answer_past_max_answer_bytes_is_refused(make_client):
    big = json.dumps({"items": [endpoint_json(name=f"ep-{i}") for i in range(3000)]}).encode()  # ~1.5 MB

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Chunks(big), headers={"content-type": "application/json"})

    with pytest.raises(AnswerTooLargeError, match="larger than 1000000 bytes"):
        make_client(HostileApi(answer), max_answer_bytes=1_000_000).list_endpoints()
    assert len(make_client(HostileApi(answer)).list_endpoints()) == 3000  # the default is far above


class Trickle(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that never stops arriving, a few bytes at a time: each read well within httpx's timeout."""

    def __iter__(self):
        while True:
            time.sleep(0.02)
            yield b" "

    async def __aiter__(self):
        while True:
            await asyncio.sleep(0.02)
            yield b" "


def test_a_trickling_answer_ends_at_the_request_deadline(make_client):
    api = HostileApi(
        lambda request: httpx.Response(200, stream=Trickle(), headers={"content-type": "application/json"})
    )
    started = time.monotonic()
    with pytest.raises(EndpointsTimeoutError):
        make_client(api, request_deadline=0.3, retry=RetryPolicy(max_retries=1, backoff_base=0.01)).get("ep")
    assert len(api.sent) == 2  # a timeout like any other: repeated per the retry policy, then reported
    assert time.monotonic() - started < 5


def test_server_texts_copied_into_errors_are_cut(make_client):
    api = HostileApi(lambda request: httpx.Response(400, headers={"x-error-message": "A" * 100_000}))
    with pytest.raises(EndpointsError) as raised:
        make_client(api).pause("ep")
    assert len(str(raised.value)) < 800
    assert "more characters" in str(raised.value)


# -- clocks: a deadline crosses from the worker to the triggerer on the API's clock ----------------


class SkewedClock:
    """The ``time`` module of a machine whose clock is ``skew`` seconds off."""

    def __init__(self, skew: float) -> None:
        self.skew = skew

    def time(self) -> float:
        return time.time() + self.skew

    def monotonic(self) -> float:
        return time.monotonic()


def test_a_deadline_written_on_a_worker_holds_on_a_triggerer_a_minute_ahead(make_client, monkeypatch):
    """The worker computes end_time; the triggerer's clock is 60 s ahead: the wait still lasts ~its time."""
    api = HostileApi(
        lambda request: httpx.Response(
            200,
            json=endpoint_json(state="initializing"),
            headers={"date": format_datetime(datetime.now(UTC), usegmt=True)},
        )
    )
    worker = make_client(api)
    worker.get("ep")  # the worker's last look, as before a deferral
    end_time = worker.api_time + 1.5
    monkeypatch.setattr(exchange_module, "time", SkewedClock(60.0))  # the triggerer's machine
    triggerer = make_client(api)
    api.sent.clear()
    result = triggerer.watch("ep", end_time=end_time, poll_interval=0.1)
    assert result.status is Outcome.TIMEOUT
    assert len(api.sent) >= 5  # it waited (a wall clock compare would time out at the first look)


# -- the trigger yields exactly one event, whatever the API answers ------------------------------


def run_trigger(monkeypatch, answer: Callable[[httpx.Request], httpx.Response], **kwargs: Any) -> list[dict]:
    """Run the real trigger with its connection from the environment and the API played by ``answer``."""
    from airflow_provider_hfep.endpoints import transport
    from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger

    monkeypatch.setenv(
        "AIRFLOW_CONN_HF_HOSTILE",
        json.dumps(
            {
                "conn_type": "hf_inference_endpoints",
                "host": API,
                "password": "hf_secret_token",
                "extra": {"namespace": "acme", "max_retries": 0},
            }
        ),
    )
    monkeypatch.setattr(
        transport, "shared_async_transport", lambda verify=True: httpx.MockTransport(HostileApi(answer))
    )
    trigger = HuggingFaceEndpointStatusTrigger(
        hf_conn_id="hf_hostile",
        endpoint_name="ep",
        namespace="acme",
        end_time=time.time() + kwargs.pop("seconds", 5),
        poll_interval=0.01,
        max_consecutive_errors=2,
        **kwargs,
    )

    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(asyncio.wait_for(collect(), 60))


@pytest.mark.parametrize("answer", MALFORMED.values(), ids=MALFORMED.keys())
def test_the_trigger_yields_one_error_event_for_a_malformed_answer(monkeypatch, answer):
    events = run_trigger(monkeypatch, lambda request: answer)
    assert len(events) == 1
    assert events[0]["status"] == "error"
    assert "unexpected answer" in events[0]["message"]


# -- properties: for any answer, a typed result ----------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
STATES = st.sampled_from(
    ["pending", "initializing", "running", "paused", "failed", "updateFailed", "hibernating", ""]
)


@st.composite
def endpoint_answers(draw) -> httpx.Response:
    """A valid endpoint with some field replaced by anything, or anything at all, or not JSON at all."""
    kind = draw(st.sampled_from(["mutated", "any json", "bytes", "error status", "valid"]))
    if kind == "any json":
        return httpx.Response(200, json=draw(JSON))
    if kind == "bytes":
        return httpx.Response(
            200,
            content=draw(st.binary(max_size=64)),
            headers={"content-type": draw(st.sampled_from(["application/json", "text/html", ""]))},
        )
    if kind == "error status":
        return httpx.Response(
            draw(st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 502, 503])), json=draw(JSON)
        )
    raw = endpoint_json(state=draw(STATES))
    if kind == "mutated":
        where = draw(st.sampled_from(["", "status", "model"]))
        target = raw if not where else raw[where]
        key = draw(st.sampled_from(sorted(target)))
        target[key] = draw(JSON)
    return httpx.Response(200, json=raw)


@settings(max_examples=300, deadline=None)
@given(answer=endpoint_answers())
def test_any_endpoint_answer_is_an_endpoint_or_a_typed_error(answer):
    client = EndpointsClient(
        "hf_secret_token",
        api_url=API,
        namespace="acme",
        retry=NO_RETRY,
        transport=httpx.MockTransport(lambda request: answer),
    )
    outcome: object
    try:
        outcome = client.get("ep")
    except EndpointsError as exc:  # MalformedAnswerError, or the typed error of an error status
        outcome = exc
    finally:
        client.close()
    if isinstance(outcome, EndpointsError):
        assert "hf_secret_token" not in str(outcome)
    else:
        assert isinstance(outcome.name, str)
        assert isinstance(outcome.status, str)
        assert outcome.url is None or isinstance(outcome.url, str)


@settings(max_examples=200, deadline=None)
@given(answer=JSON)
def test_any_hardware_listing_or_page_is_read_or_refused_with_a_typed_error(answer):
    client = EndpointsClient(
        "hf_secret_token",
        api_url=API,
        namespace="acme",
        retry=NO_RETRY,
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)),
    )
    for call in (
        client.list_hardware,
        lambda: client.list_endpoints(max_pages=3),
        client.quotas,
        lambda: client.replicas("ep"),
    ):
        with contextlib.suppress(EndpointsError):  # any other exception fails the property
            call()
    client.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(endpoint_answers(), min_size=1, max_size=6))
def test_for_any_answer_sequence_the_trigger_yields_exactly_one_event_and_never_raises(monkeypatch, answers):
    sequence = iter(answers)
    last = [answers[-1]]

    def answer(request: httpx.Request) -> httpx.Response:
        last[0] = next(sequence, last[0])
        return last[0]

    events = run_trigger(monkeypatch, answer, seconds=0.3)
    assert len(events) == 1
    assert events[0]["status"] in {o.value for o in Outcome} - {"waiting"}
    assert "hf_secret_token" not in json.dumps(events[0])
