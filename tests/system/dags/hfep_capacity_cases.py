"""On `airflow standalone`: a window over two endpoints, one of which falls back to its second hardware
choice; and a resume whose worker is killed after its fallback moved the endpoint."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import HuggingFaceResumeEndpointOperator
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

WHERE = {"vendor": "aws", "region": "us-east-1"}
CHOICES = [
    {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"},
    {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x1"},
    {**WHERE, "instance_type": "nvidia-a10g", "instance_size": "x1"},
]
CAPACITY_SECONDS = 4

with DAG(
    "hfep_capacity_two_endpoints",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    with endpoint_window(
        [
            "sys-embed",
            {
                "name": "sys-gen",
                "hardware": CHOICES[:2],
            },
        ],
        capacity_timeout=CAPACITY_SECONDS,
        poke_interval=1,
        wait_timeout=180,
    ):
        for name in ("sys-embed", "sys-gen"):
            HuggingFaceEndpointInferenceOperator(
                task_id=f"infer_{name.replace('-', '_')}",
                endpoint_name=name,
                task="text-generation",
                inputs=["a", "b"],
            )

with DAG(
    "hfep_capacity_worker_kill",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name="sys-kill",
        hardware=CHOICES,
        wait_for_completion=True,
        deferrable=False,  # the wait holds the worker: the kill finds it there
        capacity_timeout=3 * CAPACITY_SECONDS,
        poll_interval=0.5,
        timeout=180,
        retries=1,
        retry_delay=timedelta(seconds=2),
    )
