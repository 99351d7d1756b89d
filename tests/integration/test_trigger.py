"""HuggingFaceEndpointStatusTrigger run in an event loop, as the triggerer runs it, against the emulator."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import httpx
import pytest
from airflow.sdk import BaseHook

from airflow_provider_hfep import _compat
from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError, waiting, watch as watch_module
from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger

pytestmark = pytest.mark.integration


@pytest.fixture
def conn(cloud, monkeypatch):
    """A connection that retries once per read, so transient-error tests stay short."""
    monkeypatch.setenv("AIRFLOW_CONN_HF_FAST", cloud.airflow_connection(max_retries=1))
    return "hf_fast"


def make(conn: str, name: str = "watched", **overrides) -> HuggingFaceEndpointStatusTrigger:
    kwargs = dict(
        hf_conn_id=conn, endpoint_name=name, namespace="demo", end_time=time.time() + 10, poll_interval=0.05
    )
    return HuggingFaceEndpointStatusTrigger(**{**kwargs, **overrides})


async def collect(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def run(trigger) -> dict:
    events = asyncio.run(collect(trigger))
    assert len(events) == 1  # exactly one event, whatever happens
    return events[0]


def test_serialize_round_trip_runs_to_the_same_event(cloud, conn):
    cloud.seed_endpoint("watched", state="pending")
    original = make(conn, check_health=True, settle_until=None, max_consecutive_errors=3)
    classpath, kwargs = original.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs  # primitives only
    assert cloud.token not in json.dumps(kwargs)  # the token never travels with the trigger
    first, second = run(original), run(rebuilt)
    assert (
        first
        == second
        == {
            "status": "success",
            "endpoint_name": "watched",
            "namespace": "demo",
            "state": "running",
            "message": "Endpoint watched is running",
            "url": cloud.endpoint_url("watched"),
        }
    )


@pytest.mark.parametrize(
    ("state", "target", "status", "text"),
    [
        ("running", "running", "success", "is running"),
        ("failed", "running", "failed", "failed to deploy: why"),
        ("updateFailed", "running", "update_failed", "failed to update: why"),
        ("paused", "running", "paused", "paused: resume it first"),
        ("scaledToZero", "running", "scaled_to_zero", "scaled to zero"),
        ("paused", "paused", "success", "is paused"),
        ("initializing", "running", "timeout", "still not done after"),
    ],
)
def test_terminal_statuses(cloud, conn, state, target, status, text):
    cloud.seed_endpoint("watched", state="initializing")
    cloud.set_state("watched", state, "why")
    event = run(make(conn, target_status=target, end_time=time.time() + 0.5))
    assert event["status"] == status
    assert text in event["message"]
    assert event["state"] == state


def test_not_found_and_deleted(cloud, conn):
    assert run(make(conn))["status"] == "not_found"
    assert run(make(conn, target_status="deleted")) == {
        "status": "success",
        "endpoint_name": "watched",
        "namespace": "demo",
        "state": "deleted",
        "message": "Endpoint watched is deleted",
        "url": None,
    }


def test_bad_token_and_missing_connection_are_error_events(cloud, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HF_BAD",
        json.dumps({"conn_type": "hf_inference_endpoints", "host": cloud.url, "password": "hf_nope"}),
    )
    event = run(make("hf_bad"))
    assert event["status"] == "error"
    assert "HTTP 401" in event["message"]
    assert "hf_nope" not in event["message"]
    event = run(make("hf_does_not_exist"))
    assert event["status"] == "error"
    assert "hf_does_not_exist" in event["message"]


def reads(cloud, name: str = "watched") -> list[dict]:
    return [r for r in cloud.requests("management") if r["path"] == f"/v2/endpoint/demo/{name}"]


def test_a_restarted_trigger_keeps_its_absolute_deadline(cloud, conn):
    cloud.seed_endpoint("watched", state="initializing")  # never becomes running
    deadline = time.time() - 1.0  # it passed while no triggerer ran the wait
    _, kwargs = make(conn, end_time=deadline).serialize()
    assert kwargs["end_time"] == deadline  # an epoch crosses the restart, not a duration
    event = run(HuggingFaceEndpointStatusTrigger(**kwargs))
    assert event["status"] == "timeout"
    assert len(reads(cloud)) == 1  # one look and the report: no fresh wait counted from the restart


async def _cancel_after_first_read(trigger, monkeypatch) -> None:
    """Run ``trigger`` until its first look was judged, then cancel it as a stopping triggerer does."""
    first_read = asyncio.Event()

    def assess(*args, **kwargs):
        first_read.set()
        return waiting.assess(*args, **kwargs)

    monkeypatch.setattr(watch_module, "assess", assess)  # a spy: the real check runs
    task = asyncio.ensure_future(collect(trigger))
    await first_read.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await trigger.cleanup()


def test_a_triggerer_restart_leaves_the_endpoint_alone(cloud, conn, monkeypatch):
    cloud.seed_endpoint("watched", state="initializing")
    trigger = make(conn, end_time=None, on_kill_action="pause")
    asyncio.run(_cancel_after_first_read(trigger, monkeypatch))
    assert [r["method"] for r in cloud.requests("management")] == ["GET"] * len(cloud.requests("management"))
    assert cloud.state("watched") == "initializing"  # still deploying: the wait goes on elsewhere


@pytest.mark.parametrize(("action", "state"), [("pause", "paused"), ("scale_to_zero", "scaledToZero")])
def test_on_kill_stops_the_endpoint_it_waits_for(cloud, conn, action, state):
    cloud.seed_endpoint("watched", state="initializing")
    trigger = make(conn, on_kill_action=action)
    asyncio.run(trigger.on_kill())  # what Airflow 3.3 calls when a user kills the deferred task
    assert cloud.state("watched") == state
    [stop] = [r for r in cloud.requests("management") if r["method"] == "POST"]
    assert stop["path"] == f"/v2/endpoint/demo/watched/{action.replace('_', '-')}"


def test_on_kill_none_sends_nothing_and_a_failure_is_only_logged(cloud, conn, capsys):
    cloud.seed_endpoint("watched", state="initializing")
    asyncio.run(make(conn).on_kill())  # the default: "none" (a sensor's wait started nothing)
    assert cloud.requests() == []
    asyncio.run(make(conn, endpoint_name="gone", on_kill_action="pause").on_kill())
    logged = capsys.readouterr().out  # the trigger logs through Airflow's structlog, to stdout
    assert "could not pause endpoint demo/gone: HTTP 404" in logged


def test_on_kill_action_is_checked_on_the_worker():
    with pytest.raises(InvalidEndpointArgumentError, match="on_kill_action: 'delete' is not allowed"):
        HuggingFaceEndpointStatusTrigger(
            hf_conn_id="c", endpoint_name="e", namespace=None, on_kill_action="delete"
        )


def test_transient_errors_are_tolerated_then_reported(cloud, conn):
    cloud.seed_endpoint("watched", state="running")
    # each read is tried twice (max_retries=1): 2 faulty reads in a row are tolerated...
    cloud.set_faults([{"scope": "management", "kind": "503", "count": 4}])
    assert run(make(conn, max_consecutive_errors=2))["status"] == "success"
    # ...a third one is reported, with the cause
    cloud.set_faults([{"scope": "management", "kind": "503"}])
    event = run(make(conn, max_consecutive_errors=2))
    assert event["status"] == "error"
    assert "after 3 failed reads in a row" in event["message"]
    assert "503" in event["message"]
    reads = [
        r for r in cloud.requests("management") if r["path"] == "/v2/endpoint/demo/watched" and r["fault"]
    ]
    assert len(reads) == 4 + 3 * 2


def test_update_settle_ignores_the_stale_running(cloud, conn):
    cloud.seed_endpoint("watched", state="running")
    # A PUT answered just now: the emulator flips to "updating" 0.2 s later, then runs 0.5 s later.
    cloud.api("PUT", "/v2/endpoint/demo/watched", json={"compute": {"scaling": {"maxReplica": 2}}})
    event = run(make(conn, settle_until=time.time() + 5))
    states = [r["status"] for r in cloud.requests("management") if r["method"] == "GET"]
    assert event["status"] == "success"
    assert len(states) >= 5  # it kept looking through "updating", not done at the first (stale) "running"


@pytest.mark.parametrize(
    "airflow_masks_asynchronously",
    [True, False],
    ids=["airflow-3.3.2+", "before-3.3.2: lookup in a worker thread"],
)
def test_run_never_blocks_the_event_loop(cloud, conn, monkeypatch, airflow_masks_asynchronously):
    """No blocking call (a sleep, sync HTTP, a sync connection lookup) is made while the loop runs in that thread."""
    monkeypatch.setattr(_compat, "_masks_asynchronously", lambda: airflow_masks_asynchronously)
    blocked: list[str] = []
    looked_up: list[str] = []
    real_get_connection = BaseHook.get_connection.__func__

    def get_connection(cls, conn_id):
        looked_up.append(conn_id)
        return real_get_connection(cls, conn_id)

    def watch(name: str, real):
        def guard(*args, **kwargs):
            if in_event_loop():  # called from a coroutine: it stalls the loop
                blocked.append(name)
            return real(*args, **kwargs)

        return guard

    monkeypatch.setattr(time, "sleep", watch("time.sleep", time.sleep))
    monkeypatch.setattr(httpx.Client, "send", watch("httpx.Client.send", httpx.Client.send))
    monkeypatch.setattr(
        BaseHook, "get_connection", classmethod(watch("BaseHook.get_connection", get_connection))
    )
    cloud.seed_endpoint("watched", state="pending")  # a few polls through pending and initializing
    assert run(make(conn))["status"] == "success"
    assert len(reads(cloud)) >= 3
    assert blocked == []
    # the blocking lookup ran (in a thread) exactly where Airflow cannot mask asynchronously
    assert looked_up == ([] if airflow_masks_asynchronously else [conn])
    # the guard does fire on a blocking call made from a coroutine (it cannot pass vacuously)
    asyncio.run(_blocking_coroutine())
    assert blocked == ["time.sleep"]


def in_event_loop() -> bool:
    """Whether this thread is running an event loop now (a call from a coroutine, or a callback of one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def _blocking_coroutine() -> None:
    time.sleep(0)  # noqa: ASYNC251 - the blocking call the guard must catch


def test_bad_target_is_refused_on_the_worker():
    with pytest.raises(ValueError, match="target_status: 'ready' is not allowed"):
        HuggingFaceEndpointStatusTrigger(
            hf_conn_id="c", endpoint_name="e", namespace=None, end_time=0, target_status="ready"
        )
