"""
The operators of the 2026 API through dag.test() against the emulator: deploying from the catalog,
refusing hardware past the quota before any change, reading an endpoint's log into the task log.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

L4 = {
    "compute": {
        "accelerator": "gpu",
        "instanceType": "nvidia-l4",
        "instanceSize": "x1",
        "scaling": {"minReplica": 1, "maxReplica": 1},
    }
}


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_a_catalog_model_is_deployed_waited_for_and_its_log_read(run_dag, cloud, mode):
    run = run_dag(f"hfep_catalog_{mode}")
    assert run.state == "success", run.output[-3000:]
    assert run.deferrals() == (
        1 if mode == "deferred" else 0
    )  # the deploy waits; the emulator deletes at once
    deployed = run.returns["deploy"]
    assert (deployed["name"], deployed["repository"], deployed["status"]) == (
        f"zephyr-{mode}",
        "HuggingFaceH4/zephyr-7b-beta",
        "running",
    )
    assert deployed["raw"]["model"]["fromCatalog"] is True
    lines = run.returns["logs"]["lines"]
    assert any("Pulling image ghcr.io/huggingface/text-generation-inference" in line for line in lines)
    assert any("Model loaded" in line for line in lines)
    assert "Model loaded, listening on port 80" in run.output  # in the task log too
    assert cloud.endpoint(f"zephyr-{mode}") is None
    deploys = [r for r in cloud.requests() if r["path"].endswith("/deploy") and r["method"] == "POST"]
    assert [r["path"] for r in deploys] == ["/api/v1/catalog/model/HuggingFaceH4/zephyr-7b-beta/deploy"]


def test_a_model_not_in_the_catalog_fails_the_deploy_and_creates_nothing(run_dag, cloud):
    run = run_dag("hfep_catalog_inline", conf={"repo_id": "nobody/nothing"})
    assert run.tasks["deploy"] == "failed"
    assert "Model nobody/nothing is not in the catalog" in run.output
    assert cloud.endpoint("zephyr-inline") is None


def test_hardware_past_the_quota_is_refused_before_any_change(run_dag, cloud):
    cloud.set_quota("demo", "aws", "nvidia-l4", 2)
    cloud.seed_endpoint("holder", **L4)
    cloud.seed_endpoint("small", **L4)
    cloud.seed_endpoint("sleeping", state="paused", **L4)
    cloud.clear_requests()
    run = run_dag("hfep_quota")
    assert run.tasks == {"create": "failed", "resume": "failed", "update": "failed"}
    assert (
        "quota: 2 of 2 nvidia-l4 in aws/us-east-1 in use, and this needs 1 more" in run.output
    )  # create, resume
    assert "quota: 2 of 2 nvidia-l4 in aws/us-east-1 in use, and this needs 3 more" in run.output  # x1 -> x4
    changes = [
        (r["method"], r["path"])
        for r in cloud.requests("management")
        if r["method"] in ("POST", "PUT") and r["path"].startswith("/v2/endpoint")
    ]
    assert changes == []
    assert cloud.endpoint("over-quota") is None
    assert cloud.endpoint("sleeping")["status"]["state"] == "paused"
    assert cloud.endpoint("small")["compute"]["instanceSize"] == "x1"


def test_with_room_in_the_quota_the_same_operators_go_ahead(run_dag, cloud):
    cloud.set_quota("demo", "aws", "nvidia-l4", 8)
    cloud.seed_endpoint("small", **L4)
    cloud.seed_endpoint("sleeping", state="paused", **L4)
    run = run_dag("hfep_quota")
    assert run.tasks == {"create": "success", "resume": "success", "update": "success"}, run.output[-3000:]


def test_the_logs_operator_brings_the_log_into_the_task_log_without_secrets(run_dag, cloud):
    cloud.seed_endpoint(
        "crashed",
        state="initializing",
        model={
            "repository": "openai-community/gpt2",
            "framework": "pytorch",
            "task": "text-generation",
            "image": {"huggingface": {}},
            "env": {"HF_TOKEN": cloud.token},
        },
    )
    cloud.set_state("crashed", "failed", "Container exited: CUDA out of memory")
    run = run_dag("hfep_logs")
    assert run.state == "success", run.output[-3000:]
    errors = run.returns["errors"]["lines"]
    assert errors
    assert all(" ERROR " in f" {line} ".upper() for line in errors)
    assert any("CUDA out of memory" in line for line in errors)
    everything = run.returns["all"]["lines"]
    assert any("HF_TOKEN=***" in line for line in everything)
    assert run.returns["all"]["replicas"] == [run.returns["errors"]["replicas"][0]]
    assert "exit code 137" in run.returns["all"]["replicas"][0]
    assert "Container exited with code 137" in run.output  # logged, not only returned
    assert cloud.token not in run.output
    assert cloud.token not in str(run.returns)


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_a_running_endpoint_that_never_turns_healthy_is_explained(run_dag, cloud, mode):
    cloud.seed_endpoint("watched", state="running")
    cloud.set_faults([{"scope": "health", "kind": "503", "rate": 1.0}])
    run = run_dag(f"hfep_sensor_{mode}")
    assert run.tasks == {"ready": "failed"}
    assert "AirflowSensorTimeout" in run.output
    assert "its health route answered 503" in run.output
    assert "Likely cause: the container runs but its health route never answered 200" in run.output
