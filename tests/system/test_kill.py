"""A task killed by a user leaves the endpoint it started paused, on a worker and in the triggerer; a
triggerer restart does not. And a sensor that starts in the triggerer never takes a worker to wait.

Real Airflow (scheduler, LocalExecutor, triggerer, REST API), real processes, the emulator holding each
deployment in `initializing` so the task is caught mid-wait."""

from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.system


def stops(cloud, name: str) -> list[dict]:
    return [r for r in cloud.requests("management") if r["path"] == f"/v2/endpoint/demo/{name}/pause"]


def looks(cloud, name: str) -> int:
    """How often the endpoint was read since its create (the deferred case: the worker's look, then the trigger's)."""
    log = cloud.requests("management")
    created = [r["id"] for r in log if r["method"] == "POST" and (r["json"] or {}).get("name") == name]
    return sum(
        1 for r in log if created and r["id"] > created[0] and r["path"] == f"/v2/endpoint/demo/{name}"
    )


def mark_failed(airflow, dag: str, run_id: str, task_id: str) -> None:
    airflow.api(
        "PATCH", f"/dags/{dag}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": "failed"}
    )


@pytest.mark.parametrize(("name", "waits_as"), [("kill-inline", "running"), ("kill-deferred", "deferred")])
def test_a_create_killed_by_a_user_pauses_what_it_started(stack, name, waits_as):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.on("create", name, state="initializing")  # a deployment that never finishes
    dag = f"hfep_{name.replace('-', '_')}"
    run_id = airflow.trigger(dag)
    # caught mid-wait: the task is waiting where it should, and the wait has looked at the endpoint
    # (a deferred task marked failed before a triggerer picked its trigger up has no trigger to kill)
    wait_until(
        lambda: airflow.task_states(dag, run_id)["create"] == waits_as and looks(cloud, name) >= 2,
        f"the create to wait ({waits_as})",
        limit=120,
        every=0.5,
    )
    assert [rule["fired"] for rule in cloud.rules()] == [1], cloud.rules()
    assert cloud.state(name) == "initializing"

    mark_failed(airflow, dag, run_id, "create")
    # on the worker: Airflow's SIGTERM runs the operator's on_kill; deferred: the trigger's (3.3+)
    wait_until(lambda: stops(cloud, name), "the pause", limit=60, every=0.5)
    assert cloud.state(name) == "paused"
    assert airflow.task_states(dag, run_id)["create"] == "failed"
    assert [r["status"] for r in stops(cloud, name)] == [200]  # once
    print(f"\n[kill] {name}: marked failed while {waits_as}; the endpoint was paused")


def test_a_triggerer_restart_does_not_pause_and_the_wait_goes_on(stack):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.on("create", "kill-restart", state="initializing")
    dag = "hfep_kill_restart"
    run_id = airflow.trigger(dag)
    wait_until(
        lambda: (
            airflow.task_states(dag, run_id)["create"] == "deferred" and looks(cloud, "kill-restart") >= 2
        ),
        "the trigger to wait in the triggerer",
        limit=120,
        every=0.5,
    )
    old = airflow.pids("airflow triggerer")
    assert old
    for pid in old:
        os.kill(pid, signal.SIGTERM)  # a graceful stop: Airflow cancels its triggers, but not as a kill
    wait_until(lambda: not airflow.pids("airflow triggerer"), "the triggerer to stop", limit=60, every=0.5)
    airflow.start_component("triggerer")
    before = len(cloud.requests("management"))
    wait_until(
        lambda: len(cloud.requests("management")) > before, "the new triggerer to look", limit=60, every=0.5
    )
    # Airflow 3.3.2's LocalExecutor reports the deferred try's exit seconds late; a wait that ends before
    # the scheduler has taken that report is marked failed ("state changed externally"): let it land.
    deferral = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='{dag}'"
    wait_until(
        lambda: deferral in airflow.log_path.read_text(errors="replace"),
        "the deferral's report",
        limit=60,
        every=0.5,
    )
    cloud.set_state("kill-restart", "running")
    wait_until(
        lambda: airflow.task_states(dag, run_id)["create"] in ("success", "failed"),
        "the end",
        limit=120,
        every=0.5,
    )

    assert airflow.task_states(dag, run_id)["create"] == "success"
    assert stops(cloud, "kill-restart") == []
    assert cloud.state("kill-restart") == "running"


def test_a_sensor_started_in_the_triggerer_takes_no_worker_to_wait(stack):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint("from-trigger", state="initializing")
    dag = "hfep_sensor_from_trigger"
    run_id = airflow.trigger(dag)
    wait_until(
        lambda: airflow.task_states(dag, run_id)["ready"] == "deferred",
        "ready deferred",
        limit=120,
        every=0.5,
    )
    [waiting] = airflow.task_instances(dag, run_id)
    # deferred by the scheduler itself: never queued for a worker, no worker host or process
    assert waiting["queued_when"] is None
    assert not waiting["hostname"]
    assert waiting["pid"] is None
    wait_until(lambda: cloud.requests("management"), "the triggerer's first look", limit=60, every=0.5)
    cloud.set_state("from-trigger", "running")
    wait_until(
        lambda: airflow.task_states(dag, run_id)["ready"] in ("success", "failed"),
        "the end",
        limit=120,
        every=0.5,
    )
    [done] = airflow.task_instances(dag, run_id)
    assert done["state"] == "success"
    assert done["try_number"] == 1
    # the endpoint came back through the trigger's event, and its link was recorded at the end
    value = airflow.api("GET", f"/dags/{dag}/dagRuns/{run_id}/taskInstances/ready/xcomEntries/return_value")
    assert value["value"]["status"] == "running"
    link = airflow.api("GET", f"/dags/{dag}/dagRuns/{run_id}/taskInstances/ready/links")
    assert "https://endpoints.huggingface.co/demo/endpoints/from-trigger" in str(link)
