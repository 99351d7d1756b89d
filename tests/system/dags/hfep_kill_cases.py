"""DAGs for the kill tests: a create that waits on the worker, one that waits in the triggerer, and a
sensor that starts in the triggerer. The test holds each endpoint in `initializing` (an emulator rule).
And a deferred create whose deployment fails (test_failure_story)."""

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

# A create whose deployment fails while it waits in the triggerer: the worker that ends it (a fresh
# process) must tell the endpoint's story, hiding the secret value it sent (not named like one).
with DAG(
    "hfep_fails_deferred",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    HuggingFaceCreateEndpointOperator(
        task_id="create",
        endpoint_name="fails-deferred",
        deferrable=True,
        poll_interval=1,
        timeout=600,
        secrets={"MODEL_CONFIG_BLOB": "story-secret-9d41e2"},
        **SPEC,
    )
