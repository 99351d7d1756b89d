"""Hardware fallback on a real `airflow standalone` (scheduler, LocalExecutor, a real triggerer): a window
over two endpoints, one of whose first hardware choice stays pending for lack of capacity, moved on in
the triggerer's wait; and a worker SIGKILLed after its fallback moved the endpoint, whose retry goes on
from the choice reached."""

from __future__ import annotations

import os
import signal

import pytest

from tests.helpers import wait_until
from tests.system.dags.hfep_capacity_cases import CAPACITY_SECONDS

pytestmark = pytest.mark.system

DAG_ID = "hfep_capacity_two_endpoints"
A100 = {
    "accelerator": "gpu",
    "instanceType": "nvidia-a100",
    "instanceSize": "x1",
    "scaling": {"minReplica": 1},
}


def test_a_window_over_two_endpoints_falls_back_in_the_triggerer_and_closes_both(stack):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint("sys-embed", state="paused")
    cloud.seed_endpoint("sys-gen", state="paused", compute=A100)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    run_id = airflow.trigger(DAG_ID)
    wait_until(
        lambda: airflow.task_states(DAG_ID, run_id).get("endpoint_window.ready") == "deferred",
        "the ready task to wait in the triggerer",
        limit=180,
        every=0.5,
    )
    wait_until(
        lambda: (
            airflow.task_states(DAG_ID, run_id).get("endpoint_window.cost_report") in ("success", "failed")
        ),
        "the window to close",
        limit=300,
        every=1,
    )
    states = airflow.task_states(DAG_ID, run_id)
    assert set(states.values()) == {"success"}, states

    requests = cloud.requests("management")
    resumed_at = next(r["time"] for r in requests if r["path"] == "/v2/endpoint/demo/sys-gen/resume")
    moves = [
        r
        for r in requests
        if r["method"] == "PUT"
        and r["path"] == "/v2/endpoint/demo/sys-gen"
        and "instanceType" in ((r["json"] or {}).get("compute") or {})
    ]
    assert [m["json"]["compute"]["instanceType"] for m in moves] == ["nvidia-l4", "nvidia-a100"]  # on, back
    assert moves[0]["time"] - resumed_at >= CAPACITY_SECONDS  # moved once the capacity timeout had passed

    def xcom(task_id: str):
        path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/endpoint_window.{task_id}/xcomEntries/return_value"
        return airflow.api("GET", path)["value"]

    ready = {e["name"]: e for e in xcom("ready")["endpoints"]}
    assert ready["sys-gen"]["hardware"]["instance_type"] == "nvidia-l4"
    assert ready["sys-gen"]["hardware_choice"] == 2
    assert "still pending after capacity_timeout" in ready["sys-gen"]["hardware_tried"][0]["reason"]
    report = xcom("cost_report")
    assert set(report["endpoints"]) == {"demo/sys-embed", "demo/sys-gen"}
    assert report["endpoints"]["demo/sys-gen"]["price_per_hour"] == 0.8  # the L4 it ran on
    assert report["estimated_cost_usd"] == pytest.approx(
        sum(r["estimated_cost_usd"] for r in report["endpoints"].values()), abs=1e-6
    )
    for name in ("sys-embed", "sys-gen"):
        assert cloud.state(name) == "paused"
    assert cloud.endpoint("sys-gen")["compute"]["instanceType"] == "nvidia-a100"  # the next night's first
    print(
        f"\n[capacity] sys-gen moved to the L4 after {moves[0]['time'] - resumed_at:.1f} s; {report['summary']}"
    )


def test_a_worker_killed_after_a_move_is_retried_from_the_choice_reached(stack):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint("sys-kill", state="paused", compute=A100)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "low_availability")
    dag = "hfep_capacity_worker_kill"
    run_id = airflow.trigger(dag)

    def moves() -> list[str]:
        return [
            r["json"]["compute"]["instanceType"]
            for r in cloud.requests("management")
            if r["method"] == "PUT" and "instanceType" in ((r["json"] or {}).get("compute") or {})
        ]

    wait_until(lambda: moves() == ["nvidia-l4"], "the first try to move the endpoint to the L4", limit=180)
    first_try = next(ti for ti in airflow.task_instances(dag, run_id) if ti["task_id"] == "resume")
    killed = airflow.pids(f"airflow worker -- {first_try['id']}", any_group=True)
    assert killed, "the task's process was not found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)  # no on_kill, no goodbye: the endpoint stays pending on the L4
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "available")
    wait_until(
        lambda: airflow.run_state(dag, run_id) in ("success", "failed"),
        "the run to end",
        limit=240,
        every=0.5,
    )
    assert airflow.run_state(dag, run_id) == "success", airflow.task_states(dag, run_id)
    resume = next(ti for ti in airflow.task_instances(dag, run_id) if ti["task_id"] == "resume")
    assert resume["try_number"] == 2
    result = airflow.api(
        "GET", f"/dags/{dag}/dagRuns/{run_id}/taskInstances/resume/xcomEntries/return_value"
    )["value"]
    assert result["hardware_choice"] == 2
    assert result["hardware_tried"] == []  # the retry started at the L4: the A100 was not tried again
    assert moves() == ["nvidia-l4"]  # nothing moved it back
    assert cloud.state("sys-kill") == "running"
    print(
        f"\n[capacity kill] try 1 killed on the L4 (choice 2); try {resume['try_number']} went on from there"
    )
