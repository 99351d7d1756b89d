"""The example DAGs parse cleanly and run green with the real `airflow dags test` against the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).parents[2] / "example_dags"


def test_every_example_parses():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(EXAMPLES))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "hf_endpoint_lifecycle",
        "hf_nightly_batch",
        "hf_nightly_results",
        "hf_tgi_chat",
    }


def dags_test(cloud, dag_id: str, *conf: str, env: dict[str, str] | None = None) -> str:
    """Run `airflow dags test` on an example against the emulator; return its output."""
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
        "HFEP_EXAMPLE_POLL_SECONDS": "0.2",
        **(env or {}),
    }
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "dags", "test", dag_id, *conf],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # the caller reads the return code and the output
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def test_lifecycle_example_runs_green_with_airflow_dags_test(cloud):
    output = dags_test(cloud, "hf_endpoint_lifecycle")
    assert "state=success" in output
    assert output.count("Pausing task as DEFERRED") >= 2  # the sensor and the waiting operators deferred
    assert output.count("running trigger in line") >= 2
    assert cloud.requests("management")[-1]["method"] == "DELETE"  # the teardown deleted it
    assert cloud.token not in output
    created = [
        r["json"]
        for r in cloud.requests("management")
        if r["method"] == "POST" and r["path"] == "/v2/endpoint/demo"
    ]
    assert created[0]["model"]["image"]["custom"]["url"].startswith(
        "ghcr.io/huggingface/text-generation-inference"
    )
    assert "hf_endpoint_lifecycle" in created[0]["tags"]  # the templated tag was rendered


def test_nightly_batch_example_runs_green(cloud, tmp_path):
    cloud.seed_endpoint("batch-endpoint", state="paused")
    output = dags_test(cloud, "hf_nightly_batch", "--conf", json.dumps({"output_dir": str(tmp_path)}))
    assert "state=success" in output
    assert output.count("Pausing task as DEFERRED") >= 1  # the window's sensor waited in the trigger
    records = [
        json.loads(line) for f in tmp_path.rglob("chunk-*.jsonl") for line in f.read_text().splitlines()
    ]
    assert len(records) == 120
    assert all("output" in r for r in records)
    assert len(list(tmp_path.rglob("chunk-*.jsonl"))) == 3  # mapped over 3 chunks of 40
    actions = [r["path"] for r in cloud.requests("management") if r["method"] == "POST"]
    assert actions[0].endswith("/resume")
    assert actions[-1].endswith("/pause")
    assert "nightly batch: 120 results, 0 failed, in 3 files" in output
    assert "Billed " in output  # the cost report: what the replicas ran, on which hardware
    assert "replica-seconds on aws/us-east-1 nvidia-l4 x1" in output


def test_tgi_chat_example_runs_green(cloud):
    output = dags_test(cloud, "hf_tgi_chat")
    assert "state=success" in output
    chats = [r for r in cloud.requests("inference") if r["path"].endswith("/v1/chat/completions")]
    assert len(chats) == 2
    assert chats[0]["json"]["messages"][0]["role"] == "system"
    assert cloud.requests("management")[-1]["method"] == "DELETE"
