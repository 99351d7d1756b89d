"""The batch window: the endpoint is closed again whatever happens inside, and the report is true."""

from __future__ import annotations

import pytest

from airflow_provider_hfep.window import billable_report, endpoint_window

pytestmark = pytest.mark.integration


def run(run_dag, dag_id: str) -> tuple[str, dict[str, str], dict | None]:
    """Run a window DAG: the run's state, its tasks' states, and the cost report."""
    done = run_dag(dag_id)
    return done.state, done.tasks, done.returns.get("endpoint_window.cost_report")


def endpoint_state(cloud) -> str:
    return cloud.state("win")


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


def test_window_runs_the_work_then_pauses_and_reports_billing(run_dag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(run_dag, "hfep_window_pause")
    assert state == "success"
    assert set(states.values()) == {"success"}
    assert endpoint_state(cloud) == "paused"
    meter = cloud.billing("win")
    # the report reads status timestamps, resume to pause: an upper bound of the metered time, by design
    assert meter["billable_seconds"] <= report["billable_seconds"] <= meter["billable_seconds"] + 1.0
    assert report["state"] == "paused"
    assert report["price_per_hour"] == 0.8
    assert report["estimated_cost_usd"] == pytest.approx(report["billable_seconds"] / 3600 * 0.8, abs=1e-6)


def test_window_can_close_by_scaling_to_zero(run_dag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(run_dag, "hfep_window_scale_to_zero")
    assert state == "success"
    assert endpoint_state(cloud) == "scaledToZero"
    assert report["state"] == "scaledToZero"


def test_failed_work_still_pauses_and_fails_the_run(run_dag, cloud):
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(run_dag, "hfep_window_work_fails")
    assert state == "failed"
    assert states["endpoint_window.explode"] == "failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_a_deployment_that_fails_is_paused_not_left_billing(run_dag, cloud):
    cloud.seed_endpoint("win", state="paused")

    cloud.on("resume", "win", state="failed", message="Out of GPU capacity in us-east-1")
    state, states, report = run(run_dag, "hfep_window_sensor_times_out")
    assert state == "failed"
    assert states["endpoint_window.ready"] == "failed"
    assert states["endpoint_window.infer"] == "upstream_failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_sensor_timeout_still_pauses(run_dag, cloud):
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
    cloud.on("resume", "win", state="initializing")  # held there: it never becomes ready
    state, states, report = run(run_dag, "hfep_window_sensor_times_out")
    assert states["endpoint_window.ready"] == "failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    assert report["state"] == "paused"


def test_a_resume_that_fails_still_closes_and_the_report_says_never_started(run_dag, cloud):
    cloud.seed_endpoint("win", state="paused")
    cloud.set_faults(
        [{"scope": "management", "kind": "503", "method": "POST", "count": 5}]
    )  # 1 try + 4 retries
    state, states, report = run(run_dag, "hfep_window_pause")
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
