"""
Deploying and sizing through dag.test() against the emulator: a catalog model deployed (inline and
deferred) and a model not in the catalog refused; hardware past the namespace's quota refused by the
create, resume and update operators before any change, and the same operators going ahead with room.
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
