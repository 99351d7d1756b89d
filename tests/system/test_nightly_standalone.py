"""hf_nightly_batch on a real Airflow: `airflow standalone` (scheduler, dag-processor, triggerer,
api-server), triggered through the REST API, against the emulator. Every process is stopped after."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_provider_hfep.emulator import Emulator

    from tests.system.standalone import Standalone

from tests.helpers import wait_until

pytestmark = pytest.mark.system

DAG_ID = "hf_nightly_batch"
DOWNSTREAM = "hf_nightly_results"
SENSOR = "endpoint_window.ready"
TGI = {
    "repository": "HuggingFaceH4/zephyr-7b-beta",
    "framework": "pytorch",
    "task": "text-generation",
    "image": {
        "tgi": {
            "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
            "healthRoute": "/health",
            "port": 80,
        }
    },
}


def run_and_watch(
    airflow: Standalone, output: Path, limit: float = 240
) -> tuple[str, dict[str, str], dict[str, float]]:
    """Trigger the DAG, sample its task states every 0.25 s, and sum the sensor's time per state."""
    run_id = airflow.trigger(DAG_ID, conf={"output_dir": str(output)})
    sensor_seconds: dict[str, float] = {}
    last = time.monotonic()
    deadline = last + limit
    while time.monotonic() < deadline:
        state = airflow.run_state(DAG_ID, run_id)
        now = time.monotonic()
        sensor_state = airflow.task_states(DAG_ID, run_id).get(SENSOR) or "none"
        sensor_seconds[sensor_state] = sensor_seconds.get(sensor_state, 0.0) + (now - last)
        last = now
        if state in ("success", "failed"):
            return state, airflow.task_states(DAG_ID, run_id), sensor_seconds
        time.sleep(0.25)
    raise AssertionError(f"{DAG_ID} did not finish in {limit} s: {airflow.task_states(DAG_ID, run_id)}")


def endpoint_state(cloud: Emulator) -> str | None:
    return cloud.state("batch-endpoint")


def downstream_counts(airflow: Standalone) -> dict[str, int]:
    """What hf_nightly_results counted in the files its finished runs were triggered for."""
    counts: dict[str, int] = {}
    for run in airflow.api("GET", f"/dags/{DOWNSTREAM}/dagRuns")["dag_runs"]:
        if run["state"] == "success":
            entry = airflow.api(
                "GET",
                f"/dags/{DOWNSTREAM}/dagRuns/{run['dag_run_id']}/taskInstances/count_results/xcomEntries/return_value",
                params={"deserialize": "true", "stringify": "false"},
            )
            counts.update(entry["value"])
    return counts


def test_nightly_batch_runs_in_real_airflow(stack, tmp_path):
    cloud, airflow, home = stack
    cloud.reset()
    cloud.seed_endpoint("batch-endpoint", state="paused", model=TGI)
    airflow.wait_for_dag(DOWNSTREAM)
    airflow.api("PATCH", f"/dags/{DOWNSTREAM}", json={"is_paused": False})
    state, states, sensor_seconds = run_and_watch(airflow, tmp_path)
    assert state == "success", states
    assert set(states.values()) == {"success"}
    assert endpoint_state(cloud) == "paused"
    # the sensor waited for the 8 s deployment deferred, not on a worker
    assert sensor_seconds.get("deferred", 0) >= 4, sensor_seconds
    assert sensor_seconds.get("running", 0) < 3, sensor_seconds
    trigger_logs = "".join(
        p.read_text(errors="replace")
        for p in (home / "logs").rglob("*trigger*")
        if p.is_file() and SENSOR in str(p)
    )
    assert (
        "Endpoint batch-endpoint is running" in trigger_logs
    )  # the trigger's own line, in the triggerer's log
    results = sum(
        1
        for f in tmp_path.rglob("chunk-*.jsonl")
        for line in f.read_text().splitlines()
        if '"output"' in line
    )
    assert results == 120
    # each chunk's file, announced through the asset alias, was read by the downstream DAG
    chunks = sorted(str(f) for f in tmp_path.rglob("chunk-*.jsonl"))
    # (the scheduler may also run the latest scheduled night: its files are not this run's)
    counts = wait_until(
        lambda: set(chunks) <= set(found := downstream_counts(airflow)) and found,
        "the downstream runs",
        limit=120,
        every=1,
    )
    assert sum(counts[chunk] for chunk in chunks) == 120
    assert cloud.token not in "".join(
        p.read_text(errors="replace") for p in (home / "logs").rglob("*") if p.is_file()
    )


def test_failed_inference_still_pauses_the_endpoint(stack, tmp_path):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint("batch-endpoint", state="paused", model=TGI)
    cloud.set_faults([{"scope": "inference", "kind": "500"}])  # every inference request fails, not retried
    state, states, _ = run_and_watch(airflow, tmp_path)
    assert state == "failed"
    assert states["endpoint_window.infer"] == "failed"
    assert states["endpoint_window.summarize"] == "upstream_failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
