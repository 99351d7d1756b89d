"""
What the operators tell of an endpoint through dag.test() against the emulator: the logs operator
brings the endpoint's log (and its replicas' ends) into the task log with no secret shown, and a sensor
that times out on an unhealthy endpoint explains why.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


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
