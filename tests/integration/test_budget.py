"""
The window's caps, piece by piece over real HTTP to the emulator: the budget trigger (as the triggerer
runs it) closes the endpoint when a cap fires and keeps its count across a restart; the inference
operator stops sending the moment the cap fires, keeps what was answered and says what was left.
The whole window, with a real triggerer and workers, is in tests/system/test_cost_guarantees.py.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from airflow_provider_hfep.endpoints import BudgetExceededError
from airflow_provider_hfep.endpoints.costs import CLOSE_GRACE_SECONDS, Budget
from airflow_provider_hfep.triggers.budget import HuggingFaceEndpointBudgetTrigger

from tests.integration.batch_child import run

pytestmark = pytest.mark.integration

PRICE = 0.8  # the emulator's nvidia-l4 x1, USD per replica-hour


def trigger(since: float, **budget) -> HuggingFaceEndpointBudgetTrigger:
    return HuggingFaceEndpointBudgetTrigger(
        hf_conn_id="hf_inference_endpoints_default",
        endpoint_name="capped",
        namespace="demo",
        since=since,
        budget=Budget(**budget).to_json(),
        poll_interval=30,  # far longer than the caps: it wakes when one is due, not at its next poll
    )


def first_event(watch: HuggingFaceEndpointBudgetTrigger, limit: float = 60) -> dict:
    async def collect() -> dict:
        async for event in watch.run():
            return event.payload
        raise AssertionError("no event")

    return asyncio.run(asyncio.wait_for(collect(), limit))


def paused_at(cloud) -> float:
    [pause] = [r for r in cloud.requests("management") if r["path"].endswith("/capped/pause")]
    return pause["time"]


@pytest.mark.parametrize(
    ("budget", "cap"),
    [({"max_runtime": 1.5}, "max_runtime"), ({"max_cost": 1.5 * PRICE / 3600}, "max_cost")],
    ids=["max_runtime", "max_cost"],
)
def test_the_trigger_closes_the_endpoint_when_a_cap_fires(cloud, budget, cap):
    cloud.seed_endpoint("capped")
    since = time.time()
    event = first_event(trigger(since, **budget))
    assert (event["status"], event["cap"]["cap"]) == ("cap", cap)
    assert cloud.state("capped") == "paused"
    # closed the grace after the cap, not at the next poll (30 s)
    assert paused_at(cloud) - since == pytest.approx(1.5 + CLOSE_GRACE_SECONDS, abs=0.6)
    if cap == "max_cost":
        assert event["spend"]["cost_usd"] == pytest.approx(
            budget["max_cost"] * (1 + CLOSE_GRACE_SECONDS / 1.5), rel=0.3
        )


def test_stop_at_fires_at_its_time_of_day(cloud):
    cloud.seed_endpoint("capped")
    stop = time.time() + 1.0
    event = first_event(trigger(time.time(), stop_at=stop))
    assert event["cap"]["cap"] == "stop_at"
    assert paused_at(cloud) - stop == pytest.approx(CLOSE_GRACE_SECONDS, abs=0.6)


def test_a_restarted_trigger_keeps_the_spend_so_far(cloud):
    """The count comes from the replicas' lives, not from memory: a new trigger (a triggerer restart)
    with the same kwargs fires when the first would have."""
    cloud.seed_endpoint("capped")
    since = time.time() - 1.0  # opened a second ago: a dollar amount already spent
    budget = {"max_cost": 3.0 * PRICE / 3600}
    first = trigger(since, **budget)

    async def run_for_a_moment() -> None:
        watch = asyncio.ensure_future(first.run().__anext__())
        await asyncio.sleep(1.0)
        watch.cancel()  # the triggerer dies

    asyncio.run(run_for_a_moment())
    assert cloud.state("capped") == "running"
    event = first_event(trigger(since, **budget))  # the next triggerer, same kwargs from the database
    assert event["cap"]["cap"] == "max_cost"
    # the replica ran from its seeding (just before `since`): the cap is due 3 s of replica time later
    started = cloud.api("GET", "/v2/endpoint/demo/capped/replica").json()["replicas"][0]["startedAt"]
    from datetime import datetime

    began = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    assert paused_at(cloud) - max(began, since) == pytest.approx(3.0 + CLOSE_GRACE_SECONDS, abs=0.6)


def test_the_trigger_ends_quietly_when_the_window_closes_the_endpoint(cloud):
    cloud.seed_endpoint("capped", state="paused")
    assert first_event(trigger(time.time(), max_runtime=3600))["status"] == "closed"


def test_the_inference_operator_stops_sending_the_moment_a_cap_fires(cloud, monkeypatch, tmp_path):
    """The window hands its caps to its inference tasks: the batch stops at the cap (before the
    trigger's close), keeps what was answered in output_path, and fails saying what was left."""
    from tests.integration.batch_child import TaskInstanceStub

    cloud.seed_endpoint("capped", state="running")
    opened = cloud.endpoint("capped")
    resume = {"updated_at": opened["status"]["updatedAt"].replace("Z", "+00:00")}
    monkeypatch.setattr(TaskInstanceStub, "xcom_pull", lambda self, task_ids=None, **_: resume, raising=False)
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(f'"job {i}"\n' for i in range(20000)))
    started = time.time()
    with pytest.raises(
        BudgetExceededError, match=r"max_runtime=2 s reached .* of 20000 inputs were not sent"
    ) as stop:
        run(
            endpoint_name="capped",
            task="text-generation",
            input_path=str(jobs),
            output_path=str(tmp_path / "out.jsonl"),
            max_concurrency=2,
            window_budget={
                "caps": {"max_runtime": 2.0},
                "opened_by": "endpoint_window.resume",
                "check_interval": 5,
            },
        )
    stopped = time.time()
    assert stopped - started < 2.0 + 1.5  # it stopped at the cap (plus setting up and winding down)
    assert stop.value.cap["cap"] == "max_runtime"
    sent = cloud.requests("inference")
    assert sent
    assert max(r["time"] for r in sent) <= resume_epoch(resume) + 2.0 + 0.2  # nothing sent after the cap
    kept = list((tmp_path / "out.jsonl.parts").glob("part-*"))
    assert kept  # what was answered is committed
    assert cloud.state("capped") == "running"  # the close is the trigger's (the window's budget task)


def resume_epoch(resume: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(resume["updated_at"]).timestamp()
