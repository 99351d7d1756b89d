"""
The plans driven by hand (:mod:`~airflow_provider_hfep.endpoints.exchange`,
:mod:`~airflow_provider_hfep.endpoints.calls`, :mod:`~airflow_provider_hfep.endpoints.watch`).

A :class:`Script` plays the service: it hands each request a plan asks for a fabricated answer (or
throws the transport error of a lost one), records every instruction, and never sleeps (a ``Sleep`` is
recorded, not carried out). Each test checks what the plan asks next and what it returns or raises:
the retries, a create whose answer was lost, the settling after an update, the paging. No HTTP, no
emulator: milliseconds each. The same behaviours over real HTTP are in tests/integration.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from airflow_provider_hfep.endpoints import (
    AuthenticationError,
    ConflictError,
    EndpointsError,
    EndpointSpec,
    EndpointsTimeoutError,
    EndpointsTransportError,
    InvalidEndpointArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
    ValidationFailedError,
)
from airflow_provider_hfep.endpoints.calls import EndpointsApi
from airflow_provider_hfep.endpoints.errors import RedirectRefusedError
from airflow_provider_hfep.endpoints.exchange import Plan, Send, Sleep
from airflow_provider_hfep.endpoints.waiting import Outcome

from tests.specs import CPU_ENDPOINT
from tests.unit.endpoints.test_models import RAW_RUNNING

Answer = Callable[[Send], httpx.Response] | Exception
SLEEP = "sleep"


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """An answer to whatever request it meets: ``status``, ``body`` as JSON."""

    def answer(send: Send) -> httpx.Response:
        request = httpx.Request(send.method, send.url, params=send.params)
        return httpx.Response(status, json=body, headers=headers, request=request)

    return answer


def endpoint(
    state: str = "running", *, name: str = "ep", tags: list[str] | None = None, **status: Any
) -> dict:
    """The API's JSON of an endpoint in ``state``."""
    raw = copy.deepcopy(RAW_RUNNING)
    raw.update(name=name, tags=tags or [])
    raw["status"].update(state=state, **status)
    return raw


def page(*names: str, cursor: str | None = None) -> dict:
    return {"items": [endpoint(name=n) for n in names], "nextCursor": cursor}


def error(message: str) -> dict:
    return {"error": message}


class Script:
    """Plays the service for one plan: each request gets the next scripted answer; every instruction is kept."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.instructions: list[Send | Sleep] = []

    def run(self, plan: Plan[Any]) -> Any:
        try:
            instruction = next(plan)
            while True:
                self.instructions.append(instruction)
                if isinstance(instruction, Sleep):
                    instruction = plan.send(None)
                    continue
                assert self.answers, f"the plan asked for more than the script holds: {instruction}"
                answer = self.answers.pop(0)
                if isinstance(answer, Exception):
                    instruction = plan.throw(answer)
                else:
                    instruction = plan.send(answer(instruction))
        except StopIteration as done:
            assert self.answers == [], "the plan ended before asking for every scripted answer"
            return done.value

    @property
    def steps(self) -> list[str]:
        """What the plan asked for, in order: ``"GET /v2/endpoint/ns/ep"`` per request, ``"sleep"`` per pause."""
        return [
            SLEEP if isinstance(i, Sleep) else f"{i.method} {urlsplit(i.url).path}" for i in self.instructions
        ]

    @property
    def sends(self) -> list[Send]:
        return [i for i in self.instructions if isinstance(i, Send)]

    @property
    def sleeps(self) -> list[float]:
        return [i.seconds for i in self.instructions if isinstance(i, Sleep)]


def make_api(max_retries: int = 2, namespace: str | None = "ns", **policy: float) -> EndpointsApi:
    retry = RetryPolicy(max_retries=max_retries, backoff_base=1.0, backoff_max=8.0, **policy)
    return EndpointsApi(
        api_url="https://api.test", hub_url="https://hub.test", namespace=namespace, retry=retry
    )


GET_EP = "GET /v2/endpoint/ns/ep"

# -- the exchange: which answers are sent again, after what pause ------------------------------------


def test_a_transient_answer_is_sent_again_after_a_growing_pause_and_the_last_answer_read():
    script = Script(reply(503, error("down")), reply(502), reply(200, endpoint()))
    found = script.run(make_api().get(name="ep", namespace="ns"))
    assert found.name == "ep"
    assert script.steps == [GET_EP, SLEEP, GET_EP, SLEEP, GET_EP]
    first, second = script.sleeps
    assert 0.5 <= first <= 1.0  # equal jitter under a cap that doubles: base 1 s, then 2 s
    assert 1.0 <= second <= 2.0


def test_retry_after_sets_the_pause_up_to_the_policys_cap():
    script = Script(
        reply(429, error("slow down"), {"retry-after": "7"}),
        reply(503, error("busy"), {"retry-after": "3600"}),
        reply(200, endpoint()),
    )
    script.run(make_api(retry_after_max=30.0).get(name="ep", namespace="ns"))
    assert script.sleeps == [7.0, 30.0]


def test_a_lasting_server_error_ends_after_max_retries_with_the_last_message_and_the_count():
    script = Script(reply(500, error("first")), reply(500, error("second")), reply(500, error("third")))
    with pytest.raises(ServerError) as failed:
        script.run(make_api(max_retries=2).get(name="ep", namespace="ns"))
    assert (failed.value.server_message, failed.value.retries) == ("third", 2)
    assert script.steps == [GET_EP, SLEEP, GET_EP, SLEEP, GET_EP]


@pytest.mark.parametrize(
    ("status", "raised"),
    [
        (400, ValidationFailedError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ValidationFailedError),
    ],
)
def test_an_answer_that_another_try_would_not_change_is_not_sent_again(status, raised):
    script = Script(reply(status, error("no")))
    with pytest.raises(raised) as failed:
        script.run(make_api().get(name="ep", namespace="ns"))
    assert failed.value.retries == 0
    assert script.steps == [GET_EP]


@pytest.mark.parametrize(
    ("lost", "raised"),
    [
        (httpx.ConnectError("refused"), EndpointsTransportError),
        (httpx.ReadTimeout("slow"), EndpointsTimeoutError),
    ],
)
def test_no_answer_is_tried_again_then_named_with_the_number_of_tries(lost, raised):
    script = Script(lost, lost, lost)
    with pytest.raises(
        raised, match=rf"GET /v2/endpoint/ns/ep: no answer after 3 tries \({type(lost).__name__}"
    ):
        script.run(make_api(max_retries=2).get(name="ep", namespace="ns"))
    assert script.steps == [GET_EP, SLEEP, GET_EP, SLEEP, GET_EP]


def test_a_get_redirected_within_the_api_is_followed_to_the_location_as_given():
    script = Script(reply(307, headers={"location": "/v2/endpoint/elsewhere?limit=2"}), reply(200, page("a")))
    listed = script.run(make_api().list_in(namespace="ns", limit=5))
    assert [e.name for e in listed] == ["a"]
    assert script.steps == ["GET /v2/endpoint/ns", "GET /v2/endpoint/elsewhere"]
    assert script.sends[1].url == "https://api.test/v2/endpoint/elsewhere?limit=2"
    assert script.sends[1].params is None  # the location's query, not this request's added to it
    assert script.sleeps == []


@pytest.mark.parametrize(
    ("call", "location"),
    [
        (lambda api: api.get(name="ep", namespace="ns"), "https://elsewhere.test/v2/endpoint/ns/ep"),
        (lambda api: api.pause(name="ep", namespace="ns"), "/v2/endpoint/ns/ep/pause-here"),
    ],
    ids=["another-origin", "not-a-get"],
)
def test_a_redirect_that_could_carry_the_token_or_a_body_elsewhere_is_refused(call, location):
    script = Script(reply(307, headers={"location": location}))
    with pytest.raises(RedirectRefusedError, match="not followed"):
        script.run(call(make_api()))
    assert len(script.sends) == 1


def test_the_apis_clock_is_taken_from_its_date_header_only_past_the_tolerance():
    api = make_api()
    ahead = datetime.fromtimestamp(time.time() + 600, UTC)
    Script(reply(200, endpoint(), {"date": format_datetime(ahead, usegmt=True)})).run(
        api.get(name="ep", namespace="ns")
    )
    assert 599 < api.now() - time.time() < 601
    near = datetime.fromtimestamp(time.time() + 1, UTC)
    Script(reply(200, endpoint(), {"date": format_datetime(near, usegmt=True)})).run(
        api.get(name="ep", namespace="ns")
    )
    assert api.clock_offset == 0.0  # within the header's resolution: this machine's clock is kept


# -- create: never sent blindly twice --------------------------------------------------------------

MARKER = "airflow-ti-0123456789abcdef"
POST = "POST /v2/endpoint/ns"
GET_MINE = "GET /v2/endpoint/ns/mine"


def spec(*tags: str) -> EndpointSpec:
    return EndpointSpec(name="mine", **CPU_ENDPOINT, tags=["team", *tags])


@pytest.mark.parametrize(
    "lost",
    [httpx.ReadTimeout("no answer"), httpx.RemoteProtocolError("reset"), reply(502, error("bad gateway"))],
    ids=["timeout", "reset", "502"],
)
def test_a_create_whose_answer_was_lost_looks_first_and_adopts_the_endpoint_carrying_its_marker(lost):
    script = Script(lost, reply(200, endpoint("pending", name="mine", tags=["team", MARKER])))
    adopted = script.run(make_api().create(spec=spec(MARKER), namespace="ns", adopt_tag=MARKER))
    assert (adopted.name, adopted.status) == ("mine", "pending")
    assert script.steps == [POST, SLEEP, GET_MINE]  # one POST: the endpoint it created is taken as is


@pytest.mark.parametrize("adopt_tag", [MARKER, None])
def test_a_lost_create_that_finds_an_endpoint_without_its_marker_is_a_conflict(adopt_tag):
    script = Script(httpx.ReadTimeout("no answer"), reply(200, endpoint(name="mine", tags=["team"])))
    with pytest.raises(ConflictError, match="without this call's marker tag: it may be someone else's"):
        script.run(make_api().create(spec=spec(MARKER), namespace="ns", adopt_tag=adopt_tag))
    assert script.steps == [POST, SLEEP, GET_MINE]


def test_a_lost_create_that_finds_nothing_is_sent_again():
    script = Script(
        httpx.ReadTimeout("no answer"),
        reply(404, error("not found")),
        reply(200, endpoint("pending", name="mine")),
    )
    created = script.run(make_api().create(spec=spec(MARKER), namespace="ns", adopt_tag=MARKER))
    assert created.status == "pending"
    assert script.steps == [POST, SLEEP, GET_MINE, POST]
    assert script.sends[0].json == script.sends[2].json == spec(MARKER).to_body()


def test_a_create_sent_again_that_meets_409_leaves_the_conflict_to_the_caller():
    # the first try's endpoint was not readable yet when looked for: the caller (the operator) reads it
    script = Script(
        httpx.ReadTimeout("no answer"), reply(404, error("not found")), reply(409, error("exists"))
    )
    with pytest.raises(ConflictError, match="exists"):
        script.run(make_api().create(spec=spec(MARKER), namespace="ns", adopt_tag=MARKER))
    assert script.steps == [POST, SLEEP, GET_MINE, POST]


def test_a_create_refused_unprocessed_429_is_sent_again_as_is_without_looking():
    script = Script(
        reply(429, error("slow down"), {"retry-after": "2"}), reply(200, endpoint("pending", name="mine"))
    )
    script.run(make_api().create(spec=spec(), namespace="ns"))
    assert script.steps == [POST, SLEEP, POST]
    assert script.sleeps == [2.0]


def test_a_create_that_meets_409_at_once_is_a_conflict_without_a_look():
    script = Script(reply(409, error("Endpoint name already exists")))
    with pytest.raises(ConflictError, match="already exists"):
        script.run(make_api().create(spec=spec(MARKER), namespace="ns", adopt_tag=MARKER))
    assert script.steps == [POST]


def test_a_create_gives_up_after_max_retries_ambiguous_failures():
    script = Script(reply(503, error("one")), reply(404, error("not found")), reply(503, error("two")))
    with pytest.raises(ServerError, match="two"):
        script.run(make_api(max_retries=1).create(spec=spec(), namespace="ns"))
    assert script.steps == [POST, SLEEP, GET_MINE, POST]


def test_an_adopt_tag_the_spec_does_not_carry_is_refused_before_any_request():
    script = Script()
    with pytest.raises(InvalidEndpointArgumentError, match="adopt_tag"):
        script.run(make_api().create(spec=spec(), namespace="ns", adopt_tag=MARKER))
    assert script.steps == []


# -- the watch: after an update, a running seen first is the state from before it ---------------------


def watch(api: EndpointsApi, **overrides: Any) -> Plan[Any]:
    arguments = {
        "name": "ep",
        "namespace": "ns",
        "target": "running",
        "end_time": api.now() + 3600,
        "poll_interval": 5.0,
        "check_health": False,
    }
    return api.watch(**{**arguments, **overrides})


def test_after_an_update_a_running_seen_before_any_other_state_is_not_trusted_until_settle_until():
    api = make_api()
    script = Script(
        reply(200, endpoint("running")), reply(200, endpoint("updating")), reply(200, endpoint("running"))
    )
    result = script.run(watch(api, settle_until=api.now() + 600))
    assert result.status is Outcome.SUCCESS
    assert script.steps == [GET_EP, SLEEP, GET_EP, SLEEP, GET_EP]  # the running after updating is the result


def test_a_running_that_never_left_is_trusted_once_the_apis_clock_passes_settle_until():
    api = make_api()
    settle_until = api.now() + 60
    later = datetime.fromtimestamp(time.time() + 120, UTC)  # the API's clock, as its answers tell it
    script = Script(
        reply(200, endpoint("running")),
        reply(200, endpoint("running"), {"date": format_datetime(later, usegmt=True)}),
    )
    assert script.run(watch(api, settle_until=settle_until)).status is Outcome.SUCCESS
    assert script.steps == [GET_EP, SLEEP, GET_EP]


def test_a_pending_past_its_pending_deadline_ends_the_wait_stuck_pending_with_the_services_words():
    api = make_api()
    deadline = api.now() + 60
    later = datetime.fromtimestamp(time.time() + 120, UTC)  # the API's clock passes the deadline
    no_capacity = "Endpoint waiting to be scheduled: insufficient capacity for nvidia-a100 x1"
    script = Script(
        reply(200, endpoint("pending", message=no_capacity)),
        reply(200, endpoint("pending", message=no_capacity), {"date": format_datetime(later, usegmt=True)}),
    )
    result = script.run(watch(api, pending_deadline=deadline))
    assert result.status is Outcome.STUCK_PENDING
    assert no_capacity in result.message
    assert script.steps == [GET_EP, SLEEP, GET_EP]


def test_an_initializing_endpoint_past_its_pending_deadline_is_waited_for():
    api = make_api()
    script = Script(reply(200, endpoint("initializing")), reply(200, endpoint("running")))
    result = script.run(watch(api, pending_deadline=api.now() - 1))
    assert result.status is Outcome.SUCCESS  # a replica is starting: capacity was found


def test_without_settle_until_the_first_running_ends_the_wait():
    script = Script(reply(200, endpoint("running")))
    assert script.run(watch(make_api())).status is Outcome.SUCCESS
    assert script.steps == [GET_EP]


def test_a_wait_at_its_deadline_on_the_stale_state_times_out_saying_so():
    api = make_api()
    script = Script(reply(200, endpoint("running")))
    result = script.run(watch(api, settle_until=api.now() + 600, end_time=api.now() - 1))
    assert result.status is Outcome.TIMEOUT
    assert "still shows its state from before the update" in result.message
    assert script.steps == [GET_EP]


def test_a_failed_update_ends_the_wait_at_once_with_the_services_reason():
    api = make_api()
    script = Script(reply(200, endpoint("updateFailed", message="Image not found")))
    result = script.run(watch(api, settle_until=api.now() + 600))
    assert (result.status, result.state) == (Outcome.UPDATE_FAILED, "updateFailed")
    assert "Image not found" in result.message


# -- the watch: health, errors, the end, the pause -------------------------------------------------


def test_a_running_endpoint_is_awaited_until_its_health_route_answers_200():
    script = Script(reply(200, endpoint("running")), reply(503), reply(200, endpoint("running")), reply(200))
    result = script.run(watch(make_api(), check_health=True))
    assert result.status is Outcome.SUCCESS
    assert script.steps == [GET_EP, "GET /health", SLEEP, GET_EP, "GET /health"]
    assert script.sends[1].url == f"{RAW_RUNNING['status']['url']}/health"  # the endpoint's own URL


def test_failed_reads_are_tolerated_only_so_many_in_a_row():
    api = make_api(max_retries=0)  # each read's own retries aside
    script = Script(
        reply(500), reply(502), reply(200, endpoint("initializing")), reply(500), reply(503), reply(500)
    )
    result = script.run(watch(api, max_consecutive_errors=2))
    assert result.status is Outcome.ERROR
    assert "Gave up on ep after 3 failed reads in a row" in result.message
    assert isinstance(result.error, ServerError)
    assert len(script.sends) == 6  # the good read in between started the count again


@pytest.mark.parametrize(
    ("target", "outcome"), [("running", Outcome.NOT_FOUND), ("deleted", Outcome.SUCCESS)]
)
def test_a_missing_endpoint_ends_the_wait_as_not_found_or_as_deleted(target, outcome):
    script = Script(reply(404, error("Endpoint ep not found")))
    assert script.run(watch(make_api(), target=target)).status is outcome


def test_a_refusal_that_waiting_will_not_fix_ends_the_wait_at_once():
    script = Script(reply(403, error("no access")))
    result = script.run(watch(make_api()))
    assert (result.status, type(result.error)) == (Outcome.ERROR, PermissionDeniedError)
    assert script.steps == [GET_EP]


def test_the_pause_between_looks_is_jittered_around_poll_interval_and_never_past_the_deadline():
    api = make_api()
    script = Script(reply(200, endpoint("initializing")), reply(200, endpoint("running")))
    script.run(watch(api, poll_interval=10.0))
    (pause,) = script.sleeps
    assert 9.0 <= pause <= 11.0
    near = Script(reply(200, endpoint("initializing")), reply(200, endpoint("running")))
    near.run(watch(api, poll_interval=10.0, end_time=api.now() + 0.5))
    (short,) = near.sleeps
    assert 0 < short <= 0.5


# -- listing: every page, and no loop ------------------------------------------------------------


def test_every_page_is_read_by_its_cursor_and_joined():
    script = Script(
        reply(200, page("a", "b", cursor="c1")), reply(200, page("c", cursor="c2")), reply(200, page("d"))
    )
    listed = script.run(make_api().list_in(namespace="ns", tags=["nightly"]))
    assert [e.name for e in listed] == ["a", "b", "c", "d"]
    assert [s.params for s in script.sends] == [
        {"tags": "nightly"},
        {"tags": "nightly", "cursor": "c1"},
        {"tags": "nightly", "cursor": "c2"},
    ]


def test_a_cursor_handed_back_twice_ends_the_listing_with_an_error_not_a_loop():
    script = Script(reply(200, page("a", cursor="c1")), reply(200, page("a", cursor="c1")))
    with pytest.raises(EndpointsError, match="returned the cursor 'c1' twice"):
        script.run(make_api().list_in(namespace="ns"))
    assert [(s.params or {}).get("cursor") for s in script.sends] == [None, "c1"]


def test_an_empty_page_with_a_cursor_is_not_the_end_only_a_missing_cursor_is():
    # a service that filters (tags, search) after paging may answer an empty page with more behind it
    script = Script(reply(200, page(cursor="c1")), reply(200, page("a")))
    listed = script.run(make_api().list_in(namespace="ns", limit=5))
    assert [e.name for e in listed] == ["a"]
    assert [s.params for s in script.sends] == [{"limit": 5}, {"limit": 5, "cursor": "c1"}]


def test_a_service_handing_out_new_cursors_forever_is_stopped_at_max_pages():
    script = Script(reply(200, page("a", cursor="c1")), reply(200, page("b", cursor="c2")))
    with pytest.raises(EndpointsError, match=r"still more pages after max_pages=2 \(2 endpoints read\)"):
        script.run(make_api().list_in(namespace="ns", max_pages=2))
    assert len(script.sends) == 2


def test_listing_every_namespace_reads_each_and_reports_the_one_that_failed():
    me = {"name": "me", "type": "user", "orgs": [{"name": "acme"}, {"name": "nobill"}]}
    script = Script(
        reply(200, me),
        reply(200, page("mine")),
        reply(200, page("theirs")),
        reply(401, error("no payment method")),
    )
    listing = script.run(make_api(namespace=None).list_endpoints(namespace="*"))
    assert script.steps == [
        "GET /api/whoami-v2",
        "GET /v2/endpoint/me",
        "GET /v2/endpoint/acme",
        "GET /v2/endpoint/nobill",
    ]
    assert [(e.namespace, e.name) for e in listing] == [("me", "mine"), ("acme", "theirs")]
    assert list(listing.failures) == ["nobill"]
    assert isinstance(listing.failures["nobill"], AuthenticationError)


# -- the other calls made of several steps --------------------------------------------------------


def test_the_namespace_is_asked_of_whoami_once_and_kept():
    api = make_api(namespace=None)
    first = Script(reply(200, {"name": "me", "type": "user"}), reply(200, endpoint()))
    first.run(api.get(name="ep", namespace=None))
    second = Script(reply(200, endpoint()))
    second.run(api.get(name="ep", namespace=None))
    assert first.steps == ["GET /api/whoami-v2", "GET /v2/endpoint/me/ep"]
    assert second.steps == ["GET /v2/endpoint/me/ep"]


def test_an_organisations_token_is_told_to_name_the_namespace():
    script = Script(reply(200, {"name": "acme", "type": "org"}))
    with pytest.raises(InvalidEndpointArgumentError, match="not to a user"):
        script.run(make_api(namespace=None).get(name="ep", namespace=None))


def test_a_404_after_a_retried_delete_means_an_earlier_try_deleted_it():
    script = Script(reply(503, error("busy")), reply(404, error("not found")))
    assert script.run(make_api().delete(name="ep", namespace="ns", missing_ok=False)) is None
    assert script.steps == ["DELETE /v2/endpoint/ns/ep", SLEEP, "DELETE /v2/endpoint/ns/ep"]
    with pytest.raises(NotFoundError):  # at the first try, it was not there
        Script(reply(404, error("not found"))).run(
            make_api().delete(name="ep", namespace="ns", missing_ok=False)
        )


def test_resuming_an_endpoint_already_running_reads_it_when_running_ok():
    script = Script(reply(400, error("Endpoint is already running")), reply(200, endpoint()))
    assert script.run(make_api().resume(name="ep", namespace="ns", running_ok=True)).status == "running"
    assert script.steps == ["POST /v2/endpoint/ns/ep/resume", GET_EP]


@pytest.mark.parametrize(
    ("message", "running_ok"),
    [("Endpoint is already running", False), ("Endpoint is being deleted", True)],
    ids=["not-running-ok", "another-refusal"],
)
def test_any_other_refused_resume_is_raised(message, running_ok):
    script = Script(reply(400, error(message)))
    with pytest.raises(ValidationFailedError, match=message):
        script.run(make_api().resume(name="ep", namespace="ns", running_ok=running_ok))
    assert script.steps == ["POST /v2/endpoint/ns/ep/resume"]
