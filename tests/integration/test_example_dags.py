"""The example DAGs parse cleanly and run green with the real `airflow dags test` against the emulator."""

from __future__ import annotations

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
    assert "hf_endpoint_lifecycle" in bag.dag_ids


def test_lifecycle_example_runs_green_with_airflow_dags_test(cloud):
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
        "HFEP_EXAMPLE_POLL_SECONDS": "0.2",
    }
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run([str(airflow), "dags", "test", "hf_endpoint_lifecycle"], env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "state=success" in output
    assert output.count("Pausing task as DEFERRED") >= 2  # the sensor and the waiting operators deferred
    assert output.count("running trigger in line") >= 2
    assert cloud.requests("management")[-1]["method"] == "DELETE"  # the teardown deleted it
    assert cloud.token not in output
    created = [r["json"] for r in cloud.requests("management") if r["method"] == "POST" and r["path"] == "/v2/endpoint/demo"]
    assert created[0]["model"]["image"]["custom"]["url"].startswith("ghcr.io/huggingface/text-generation-inference")
    assert "hf_endpoint_lifecycle" in created[0]["tags"]  # the templated tag was rendered
