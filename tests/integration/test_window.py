"""The batch window: the endpoint is closed again whatever happens inside, and the report is true."""

from __future__ import annotations

import pytest

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
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
    # the report reads the replicas' start and stop times: what the meter billed, to the millisecond
    assert report["billable_seconds"] == pytest.approx(meter["billable_seconds"], abs=0.002)
    assert report["replica_seconds"] == pytest.approx(meter["replica_seconds"], abs=0.002)
    assert report["source"] == "replicas"
    assert report["state"] == "paused"
    assert report["price_per_hour"] == 0.8
    assert report["estimated_cost_usd"] == pytest.approx(report["billable_seconds"] / 3600 * 0.8, abs=1e-6)
    # the night's cost is also an asset event, where the UI and downstream DAGs see it
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == "hfep://demo/win/cost")
            .all()
        )
        extras = [event.extra for event in events]
    assert any(extra.get("replica_seconds") == report["replica_seconds"] for extra in extras), extras


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
    opened = {"updated_at": "2026-01-01T00:00:00+00:00", "min_replica": 2}
    assert "may still be billing" in billable_report(opened, None, 0.8)["summary"]
    closed = {"updated_at": "2026-01-01T00:30:00+00:00", "status": "paused"}
    report = billable_report(opened, closed, 1.0)
    assert report["billable_seconds"] == 1800
    assert report["estimated_cost_usd"] == 1.0


def test_bad_close_is_refused():
    with pytest.raises(ValueError, match="close: 'delete' is not allowed"):
        with endpoint_window("win", close="delete"):
            pass


def test_a_capped_window_wires_a_budget_watch_and_hands_its_caps_to_the_work(dagbag):
    dag = dagbag.get_dag("hfep_window_capped")
    ready, budget, report = (dag.get_task(f"endpoint_window.{t}") for t in ("ready", "budget", "cost_report"))
    assert budget.task_id in ready.downstream_task_ids
    assert budget.downstream_task_ids == {report.task_id}  # not upstream of the close: it would wait forever
    assert dag.get_task("endpoint_window.pause").task_id not in budget.downstream_task_ids
    infer = dag.get_task("endpoint_window.infer")  # mapped: each instance gets the caps
    assert infer.partial_kwargs["window_budget"] == {
        "caps": {"max_cost": None, "max_runtime": 3.0, "stop_at": None, "timezone": "UTC"},
        "opened_by": "endpoint_window.resume",
        "check_interval": 0.1,
    }
    assert dagbag.get_dag("hfep_window_pause").get_task("endpoint_window.infer").window_budget is None


def test_the_caps_reach_inference_tasks_in_nested_groups():
    """A task group inside the window (or, on Airflow 3.4, a task loop: make compat runs that) holds work too."""
    from airflow.sdk import DAG, TaskGroup

    with DAG("hfep_window_nested", schedule=None) as dag:
        with endpoint_window("win", max_runtime=60, poke_interval=1):
            with TaskGroup("rounds"):
                with TaskGroup("inner"):
                    HuggingFaceEndpointInferenceOperator(
                        task_id="infer", endpoint_name="win", task="text-generation", inputs=["a"]
                    )
    infer = dag.get_task("endpoint_window.rounds.inner.infer")
    assert infer.window_budget["opened_by"] == "endpoint_window.resume"
    assert infer.window_budget["caps"]["max_runtime"] == 60


def test_in_dag_test_a_cap_stops_the_work_and_the_window_still_closes(run_dag, cloud):
    """dag.test() runs one task at a time, so the budget task does not watch there (it would hold the
    work up); the mapped inference tasks stop at the cap on their own, and the close follows."""
    cloud.seed_endpoint("win", state="paused")
    state, states, report = run(run_dag, "hfep_window_capped")
    assert state == "failed"
    assert states["endpoint_window.budget"] == "success"
    assert states["endpoint_window.infer"] == "failed"
    assert states["endpoint_window.pause"] == "success"
    assert endpoint_state(cloud) == "paused"
    sent = len(cloud.requests("inference"))
    assert 0 < sent < 40000  # stopped at the cap, far from the 40,000 jobs
