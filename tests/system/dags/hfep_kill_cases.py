"""DAGs for the kill tests: a create that waits on the worker, one that waits in the triggerer, and a
sensor that starts in the triggerer. The test holds each endpoint in `initializing` (an emulator rule)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import HuggingFaceCreateEndpointOperator
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

SPEC = {
    "repository": "openai-community/gpt2",
    "framework": "pytorch",
    "accelerator": "gpu",
    "instance_size": "x1",
    "instance_type": "nvidia-l4",
    "region": "us-east-1",
    "vendor": "aws",
}

for name, deferrable in (("kill-inline", False), ("kill-deferred", True), ("kill-restart", True)):
    with DAG(
        f"hfep_{name.replace('-', '_')}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["test"],
    ):
        HuggingFaceCreateEndpointOperator(
            task_id="create", endpoint_name=name, deferrable=deferrable, poll_interval=1, timeout=600, **SPEC
        )

with DAG(
    "hfep_sensor_from_trigger",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    HuggingFaceEndpointSensor(
        task_id="ready", endpoint_name="from-trigger", start_from_trigger=True, poke_interval=1, timeout=300
    )
