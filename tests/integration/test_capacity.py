"""Hardware alternatives: a night whose first choice has no capacity still runs, on the next one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

A100 = {"vendor": "aws", "region": "us-east-1", "instance_type": "nvidia-a100", "instance_size": "x1"}


def try_number(done, task_id: str) -> int:
    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        ti = session.query(TaskInstance).filter_by(run_id=done.run_id, task_id=task_id).one()
        return ti.try_number


def seed_paused_on_a100(cloud) -> None:
    cloud.seed_endpoint(
        "cap",
        state="paused",
        compute={
            "accelerator": "gpu",
            "instanceType": "nvidia-a100",
            "instanceSize": "x1",
            "scaling": {"minReplica": 1, "maxReplica": 1},
        },
    )


def compute_changes(cloud) -> list[str]:
    """The instance types the endpoint was moved to, in order (the PUT bodies the service got)."""
    return [
        entry["json"]["compute"]["instanceType"]
        for entry in cloud.requests(scope="management")
        if entry["method"] == "PUT" and "instanceType" in ((entry["json"] or {}).get("compute") or {})
    ]


def test_first_choice_not_available_is_refused_before_any_deploy_and_the_next_runs(run_dag, cloud):
    seed_paused_on_a100(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "not_available")
    done = run_dag("hfep_capacity_resume")
    assert done.state == "success", done.output[-3000:]
    result = done.returns["resume"]
    assert result["hardware"]["instance_type"] == "nvidia-l4"
    assert result["hardware_choice"] == 2
    assert [t["choice"] for t in result["hardware_tried"]] == [1]
    assert "refused before deploy" in result["hardware_tried"][0]["reason"]
    assert "not_available" in result["hardware_tried"][0]["reason"]
    endpoint = cloud.endpoint("cap")
    assert endpoint["status"]["state"] == "running"
    assert endpoint["compute"]["instanceType"] == "nvidia-l4"
    # moved while paused, then resumed once: the A100 was never asked for
    assert compute_changes(cloud) == ["nvidia-l4"]
    resumes = [e for e in cloud.requests(scope="management") if e["path"].endswith("/resume")]
    assert len(resumes) == 1


def test_first_choice_stuck_pending_moves_to_the_next_after_the_capacity_timeout(run_dag, cloud):
    seed_paused_on_a100(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    done = run_dag("hfep_capacity_resume")
    assert done.state == "success", done.output[-3000:]
    result = done.returns["resume"]
    assert result["hardware"]["instance_type"] == "nvidia-l4"
    (first,) = result["hardware_tried"]
    assert first["choice"] == 1
    assert "still pending after capacity_timeout (2 s)" in first["reason"]
    assert "insufficient capacity for nvidia-a100 x1" in first["reason"]  # the service's own words
    # the A100 was tried (resumed on it), then the pending endpoint's compute was moved
    requests = cloud.requests(scope="management")
    resume_at = next(e["time"] for e in requests if e["path"].endswith("/resume"))
    move_at = next(e["time"] for e in requests if e["method"] == "PUT")
    assert move_at - resume_at >= 2  # not before capacity_timeout
    assert compute_changes(cloud) == ["nvidia-l4"]
    assert cloud.endpoint("cap")["compute"]["instanceType"] == "nvidia-l4"
    assert cloud.state("cap") == "running"


def seed_paused_on_l4(cloud) -> None:
    cloud.seed_endpoint("cap", state="paused")  # on an L4: where last night's fallback left it


def test_the_next_night_starts_from_the_first_choice(run_dag, cloud):
    seed_paused_on_l4(cloud)
    done = run_dag("hfep_capacity_resume")
    assert done.state == "success", done.output[-3000:]
    assert done.returns["resume"]["hardware_choice"] == 1
    assert compute_changes(cloud) == ["nvidia-a100"]  # moved back while paused, then resumed


def test_with_hardware_sticky_the_night_starts_where_the_last_one_ended(run_dag, cloud):
    seed_paused_on_l4(cloud)
    done = run_dag("hfep_capacity_sticky")
    assert done.state == "success", done.output[-3000:]
    assert done.returns["resume"]["hardware_choice"] == 2
    assert compute_changes(cloud) == []
    assert cloud.endpoint("cap")["compute"]["instanceType"] == "nvidia-l4"


def test_every_choice_unavailable_fails_listing_each_and_closes_the_endpoint(run_dag, cloud):
    seed_paused_on_a100(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "not_available")
    cloud.set_availability("aws", "us-east-1", "nvidia-a10g", "low_availability")
    done = run_dag("hfep_capacity_resume")
    assert done.state == "failed"
    assert done.tasks["resume"] == "failed"
    message = done.output
    assert "no hardware choice could run endpoint demo/cap" in message
    assert "1. nvidia-a100 x1 in aws/us-east-1: still pending after capacity_timeout" in message
    assert "2. nvidia-l4 x1 in aws/us-east-1: refused before deploy" in message
    assert "3. nvidia-a10g x1 in aws/us-east-1: still pending after capacity_timeout" in message
    assert cloud.state("cap") == "paused"
    assert compute_changes(cloud) == ["nvidia-a10g"]
    assert cloud.billing("cap")["replica_seconds"] == 0  # pending never billed


def test_a_retry_after_a_kill_resumes_at_the_choice_reached(run_dag, cloud):
    seed_paused_on_a100(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "low_availability")
    # the L4 gets capacity once the retry has resumed the endpoint (its second resume)
    cloud.on(
        "resume",
        "cap",
        after=1,
        availability=[
            {"vendor": "aws", "region": "us-east-1", "instanceType": "nvidia-l4", "status": "available"}
        ],
    )
    done = run_dag("hfep_capacity_retry")
    assert done.state == "success", done.output[-3000:]
    result = done.returns["resume"]
    assert result["hardware"]["instance_type"] == "nvidia-l4"
    assert result["hardware_choice"] == 2
    assert result["hardware_tried"] == []  # this try started at the L4: the A100 was not tried again
    assert try_number(done, "resume") == 2
    requests = cloud.requests(scope="management")
    resumes = [e for e in requests if e["path"].endswith("/resume")]
    assert len(resumes) == 2  # one per try
    # every compute change went to the L4; none went back to the A100
    assert compute_changes(cloud) == ["nvidia-l4"]
    assert cloud.endpoint("cap")["compute"]["instanceType"] == "nvidia-l4"
    assert cloud.state("cap") == "running"


def test_create_falls_back_when_the_service_refuses_its_first_choice(run_dag, cloud):
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "not_available")
    done = run_dag("hfep_capacity_create")
    assert done.state == "success", done.output[-3000:]
    result = done.returns["create"]
    assert result["hardware"]["instance_type"] == "nvidia-l4"
    assert result["instance_type"] == "nvidia-l4"
    assert [t["choice"] for t in result["hardware_tried"]] == [1]
    creates = [
        e
        for e in cloud.requests(scope="management")
        if e["method"] == "POST" and e["path"] == "/v2/endpoint/demo"
    ]
    assert [e["json"]["compute"]["instanceType"] for e in creates] == ["nvidia-l4"]


def test_a_window_falls_back_runs_the_work_prices_the_hardware_used_and_restores_the_first(run_dag, cloud):
    seed_paused_on_a100(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    done = run_dag("hfep_capacity_window")
    assert done.state == "success", done.output[-3000:]
    assert done.tasks["endpoint_window.infer"] == "success"
    ready = done.returns["endpoint_window.ready"]["endpoints"][0]
    assert ready["hardware"]["instance_type"] == "nvidia-l4"
    assert "still pending after capacity_timeout" in ready["hardware_tried"][0]["reason"]
    closed = done.returns["endpoint_window.pause"]
    assert closed["instance_type"] == "nvidia-l4"  # what it ran on
    assert closed["restored_hardware"]["instance_type"] == "nvidia-a100"
    report = done.returns["endpoint_window.cost_report"]
    assert report["price_per_hour"] == 0.8  # the L4's price, not the A100's 2.5
    assert "nvidia-l4" in report["hardware"]
    assert report["replica_seconds"] == pytest.approx(cloud.billing("cap")["replica_seconds"], abs=0.002)
    endpoint = cloud.endpoint("cap")
    assert endpoint["status"]["state"] == "paused"
    assert endpoint["compute"]["instanceType"] == "nvidia-a100"  # the next night starts there
    assert compute_changes(cloud) == ["nvidia-l4", "nvidia-a100"]


def seed_three(cloud) -> None:
    for name in ("embedder", "reranker"):
        cloud.seed_endpoint(
            name,
            state="paused",
            compute={
                "accelerator": "gpu",
                "instanceType": "nvidia-t4",
                "instanceSize": "x1",
                "scaling": {"minReplica": 1, "maxReplica": 1},
            },
        )
    cloud.seed_endpoint("generator", state="paused")  # on an L4, its first choice


def test_a_three_endpoint_window_runs_the_work_once_all_run_and_reports_each_and_the_total(run_dag, cloud):
    seed_three(cloud)
    done = run_dag("hfep_capacity_three")
    assert done.state == "success", done.output[-3000:]
    assert {name: cloud.state(name) for name in ("embedder", "reranker", "generator")} == dict.fromkeys(
        ("embedder", "reranker", "generator"), "paused"
    )
    report = done.returns["endpoint_window.cost_report"]
    assert set(report["endpoints"]) == {"demo/embedder", "demo/reranker", "demo/generator"}
    costs = [r["estimated_cost_usd"] for r in report["endpoints"].values()]
    assert all(cost > 0 for cost in costs)
    assert report["estimated_cost_usd"] == pytest.approx(sum(costs), abs=1e-6)
    assert report["endpoints"]["demo/embedder"]["price_per_hour"] == 0.5  # T4
    assert report["endpoints"]["demo/generator"]["price_per_hour"] == 0.8  # L4


def test_one_endpoint_failing_to_deploy_closes_all_three_within_one_poll_interval(run_dag, cloud):
    from tests.dags.hfep_capacity_cases import POLL_SECONDS

    seed_three(cloud)
    # the embedder and the reranker would wait (no T4 capacity) until the window's 120 s timeout
    cloud.set_availability("aws", "us-east-1", "nvidia-t4", "low_availability")
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "low_availability")
    # the generator, pending too, fails while the trigger watches (at its third read), for a reason
    # no fallback fixes
    cloud.on("get", "generator", after=2, state="failed", message="CUDA error: device-side assert triggered")
    done = run_dag("hfep_capacity_three")
    assert done.state == "failed"
    assert done.tasks["endpoint_window.ready"] == "failed"
    for name in ("embedder", "reranker", "generator"):
        assert done.tasks[f"endpoint_window.pause_{name}"] == "success"
        assert cloud.state(name) == "paused"
        assert done.tasks[f"endpoint_window.infer_{name}"] == "upstream_failed"
    requests = cloud.requests(scope="management")
    reads = [e for e in requests if e["method"] == "GET" and e["path"] == "/v2/endpoint/demo/generator"]
    failure_seen = reads[3]["time"]  # the first read after the rule fired
    last_close = max(e["time"] for e in requests if e["path"].endswith("/pause"))
    assert last_close - failure_seen < POLL_SECONDS
    report = done.returns["endpoint_window.cost_report"]
    assert set(report["endpoints"]) == {"demo/embedder", "demo/reranker", "demo/generator"}
    for name in ("embedder", "reranker"):  # closed while still waiting for capacity: never billed
        assert cloud.billing(name)["replica_seconds"] == 0
