"""The batch window: the endpoint is closed again whatever happens inside, and the report is true."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from airflow_provider_hfep.window import billable_report, endpoint_window

pytestmark = pytest.mark.integration

CASES = Path(__file__).parents[1] / "dags" / "hfep_window_cases.py"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(CASES))
    assert not bag.import_errors
    return bag


def run(dagbag, dag_id: str):
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    dagrun = dagbag.get_dag(dag_id).test()
    with create_session() as session:
        states = {
            ti.task_id: str(ti.state)
            for ti in session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=dagrun.run_id)
        }
        report = [
            x.value
            for x in session.query(XComModel).filter_by(
                dag_id=dag_id, run_id=dagrun.run_id, key="return_value"
            )
            if x.task_id.endswith("cost_report")
        ]
    return str(dagrun.state), states, report[0] if report else None


def endpoint_state(cloud) -> str:
    import httpx

    answer = httpx.get(
        f"{cloud.url}/v2/endpoint/demo/win", headers={"authorization": f"Bearer {cloud.token}"}
    )
    return answer.json()["status"]["state"]


def test_window_wires_setup_sensor_work_and_teardowns(dagbag):
    dag = dagbag.get_dag("hfep_window_pause")
    resume, ready, infer, pause, report = (
        dag.get_task(f"endpoint_window.{t}") for t in ("resume", "ready", "infer", "pause", "cost_report")
    )
    assert resume.downstream_task_ids == {ready.task_id}
    assert ready.downstream_task_ids == {infer.task_id}
    assert infer.downstream_task_ids == {pause.task_id}
    assert pause.downstream_task_ids == {report.task_id}
    assert resume.is_setup
    assert pause.is_teardown
    assert report.is_teardown
    assert ready.deferrable
    assert not resume.wait_for_completion


def test_window_runs_the_work_then_pauses_and_reports_billing(dagbag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(dagbag, "hfep_window_pause")
    assert state == "success"
    assert set(states.values()) == {"success"}
    assert endpoint_state(cloud) == "paused"
    meter = cloud.billing("win")
    # the report reads status timestamps, resume to pause: an upper bound of the metered time, by design
    assert meter["billable_seconds"] <= report["billable_seconds"] <= meter["billable_seconds"] + 1.0
    assert report["state"] == "paused"
    assert report["price_per_hour"] == 0.8
    assert report["estimated_cost_usd"] == pytest.approx(report["billable_seconds"] / 3600 * 0.8, abs=1e-6)


def test_window_can_close_by_scaling_to_zero(dagbag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(dagbag, "hfep_window_scale_to_zero")
    assert state == "success"
    assert endpoint_state(cloud) == "scaledToZero"
    assert report["state"] == "scaledToZero"


def test_failed_work_still_pauses_and_fails_the_run(dagbag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(dagbag, "hfep_window_work_fails")
    assert state == "failed"
    assert states["endpoint_window.explode"] == "failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_a_deployment_that_fails_is_paused_not_left_billing(dagbag, cloud):
    cloud.seed_endpoint("win", state="paused")

    def fail_when_resumed() -> None:
        deadline = time.time() + 20
        while time.time() < deadline:
            if any(r["path"].endswith("/resume") for r in cloud.requests("management")):
                cloud.set_state("win", "failed", "Out of GPU capacity in us-east-1")
                return
            time.sleep(0.02)

    threading.Thread(target=fail_when_resumed, daemon=True).start()
    state, states, report = run(dagbag, "hfep_window_sensor_times_out")
    assert state == "failed"
    assert states["endpoint_window.ready"] == "failed"
    assert states["endpoint_window.infer"] == "upstream_failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_sensor_timeout_still_pauses(dagbag, cloud):
    cloud.seed_endpoint(
        "win",
        state="paused",
        model={
            "repository": "gpt2",
            "framework": "pytorch",
            "task": "text-generation",
            "image": {"huggingface": {}},
        },
    )
    stop = threading.Event()

    def keep_initializing() -> None:  # an endpoint that never becomes ready
        while not stop.is_set():
            if any(r["path"].endswith("/resume") for r in cloud.requests("management")):
                cloud.set_state("win", "initializing")
                return
            time.sleep(0.01)

    threading.Thread(target=keep_initializing, daemon=True).start()
    try:
        state, states, report = run(dagbag, "hfep_window_sensor_times_out")
    finally:
        stop.set()
    assert states["endpoint_window.ready"] == "failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_a_resume_that_fails_still_closes_and_the_report_says_never_started(dagbag, cloud):
    cloud.seed_endpoint("win", state="paused")
    cloud.set_faults(
        [{"scope": "management", "kind": "503", "method": "POST", "count": 5}]
    )  # 1 try + 4 retries
    state, states, report = run(dagbag, "hfep_window_pause")
    assert state == "failed"
    assert states["endpoint_window.resume"] == "failed"
    assert states["endpoint_window.infer"] == "upstream_failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert cloud.billing("win")["billable_seconds"] == 0
    assert report["billable_seconds"] == 0.0
    assert report["summary"] == "The endpoint was never started: the resume did not succeed. It is paused."


def test_report_when_nothing_ran_or_nothing_closed():
    assert (
        billable_report(None, None, 0.8)["summary"]
        == "The endpoint was never started: the resume did not succeed."
    )
    opened = {"updated_at": "2026-01-01T00:00:00+00:00", "raw": {"compute": {"scaling": {"minReplica": 2}}}}
    assert "may still be billing" in billable_report(opened, None, 0.8)["summary"]
    closed = {"updated_at": "2026-01-01T00:30:00+00:00", "status": "paused"}
    report = billable_report(opened, closed, 1.0)
    assert report["billable_seconds"] == 1800
    assert report["estimated_cost_usd"] == 1.0


def test_bad_close_is_refused():
    with pytest.raises(ValueError, match="close: 'delete' is not allowed"):
        with endpoint_window("win", close="delete"):
            pass
