"""An endpoint's whole life in one DAG: create a TGI endpoint, wait for it without holding a worker,
update it, scale it to zero, resume it, pause it, and delete it (as a teardown, so it is deleted even
when a step fails).

Run it against the local emulator:

    hfep-emulator --deploy-seconds 3 &          # prints HFEP_EMULATOR_URL=http://127.0.0.1:PORT
    export AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT='{"conn_type": "hf_inference_endpoints",
        "host": "http://127.0.0.1:PORT", "password": "hf_demo_token",
        "extra": {"hub_url": "http://127.0.0.1:PORT", "namespace": "demo"}}'
    airflow dags test hf_endpoint_lifecycle
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFaceDeleteEndpointOperator,
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
    HuggingFaceUpdateEndpointOperator,
)
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

# Seconds between two looks at the endpoint. Real deployments take minutes: 30 s is plenty. The
# tests run this DAG against the emulator, which deploys in a second, with a shorter interval.
POLL_SECONDS = float(os.environ.get("HFEP_EXAMPLE_POLL_SECONDS", "30"))
ENDPOINT = "zephyr-7b-beta-tgi"

with DAG(
    dag_id="hf_endpoint_lifecycle",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["huggingface", "example"],
    doc_md=__doc__,
):
    create = HuggingFaceCreateEndpointOperator(
        task_id="create",
        endpoint_name=ENDPOINT,
        repository="HuggingFaceH4/zephyr-7b-beta",
        framework="pytorch",
        task="text-generation",
        accelerator="gpu",
        vendor="aws",
        region="us-east-1",
        instance_type="nvidia-l4",
        instance_size="x1",
        # The seed guide's TGI container (note the API's camelCase: healthRoute).
        custom_image={
            "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
            "healthRoute": "/health",
            "port": 80,
        },
        env={
            "MAX_BATCH_PREFILL_TOKENS": "2048",
            "MAX_INPUT_LENGTH": "1024",
            "MAX_TOTAL_TOKENS": "1512",
            "MODEL_ID": "/repository",
        },
        tags=["airflow", "{{ dag.dag_id }}"],
        if_exists="reuse",
        wait_for_completion=False,
    )
    ready = HuggingFaceEndpointSensor(
        task_id="wait_until_running", endpoint_name=ENDPOINT, poke_interval=POLL_SECONDS, timeout=3600
    )
    update = HuggingFaceUpdateEndpointOperator(
        task_id="update",
        endpoint_name=ENDPOINT,
        min_replica=0,
        max_replica=2,
        scale_to_zero_timeout=15,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )
    scale_to_zero = HuggingFaceScaleToZeroEndpointOperator(task_id="scale_to_zero", endpoint_name=ENDPOINT)
    resume = HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name=ENDPOINT,
        wait_for_completion=True,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )
    pause = HuggingFacePauseEndpointOperator(task_id="pause", endpoint_name=ENDPOINT)
    delete = HuggingFaceDeleteEndpointOperator(task_id="delete", endpoint_name=ENDPOINT, missing_ok=True)

    create >> ready >> update >> scale_to_zero >> resume >> pause >> delete.as_teardown(setups=create)
