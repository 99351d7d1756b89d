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
        if entry["method"] == "PUT" and isinstance(entry["json"], dict) and entry["json"].get("compute")
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
