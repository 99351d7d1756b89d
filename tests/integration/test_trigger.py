"""HuggingFaceEndpointStatusTrigger run in an event loop, as the triggerer runs it, against the emulator."""

from __future__ import annotations

import asyncio
import importlib
import json
import time

import pytest

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


def test_deadline_survives_a_triggerer_restart(cloud, conn):
    cloud.seed_endpoint("watched", state="initializing")  # never becomes running
    trigger = make(conn, end_time=time.time() + 1.0)
    _, kwargs = trigger.serialize()

    async def interrupted() -> None:
        task = asyncio.ensure_future(collect(trigger))
        await asyncio.sleep(0.6)
        task.cancel()  # the triggerer dies; the trigger row keeps its kwargs

    asyncio.run(interrupted())
    restarted_at = time.time()
    event = run(HuggingFaceEndpointStatusTrigger(**kwargs))
    assert event["status"] == "timeout"
    assert time.time() - restarted_at < 0.9  # the original deadline, not a fresh second after restart


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
    cloud._control.put(
        f"{cloud.url}/v2/endpoint/demo/watched",
        json={"compute": {"scaling": {"maxReplica": 2}}},
        headers={"authorization": f"Bearer {cloud.token}"},
    )
    event = run(make(conn, settle_until=time.time() + 5))
    states = [r["status"] for r in cloud.requests("management") if r["method"] == "GET"]
    assert event["status"] == "success"
    assert len(states) >= 5  # it kept looking through "updating", not done at the first (stale) "running"


def test_run_never_blocks_the_event_loop(cloud, conn):
    cloud.seed_endpoint("watched", state="pending")
    gaps: list[float] = []

    async def main() -> dict:
        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        tick = asyncio.ensure_future(ticker())
        [event] = await collect(make(conn))
        tick.cancel()
        return event

    assert asyncio.run(main())["status"] == "success"
    assert max(gaps) < 0.25  # a blocking call (sync HTTP, time.sleep) would stall the ticker for a whole poll


def test_bad_target_is_refused_on_the_worker():
    with pytest.raises(ValueError, match="target_status: 'ready' is not allowed"):
        HuggingFaceEndpointStatusTrigger(
            hf_conn_id="c", endpoint_name="e", namespace=None, end_time=0, target_status="ready"
        )
