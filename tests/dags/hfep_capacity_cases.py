"""DAGs of the hardware fallback tests: a night whose first choice has no capacity, and windows over several endpoints.

The emulator decides capacity per vendor, region and instance type (the test sets it); capacity
timeouts are seconds here, where a night uses the default 15 minutes.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFaceResumeEndpointOperator,
)
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

from tests.specs import GPU_ENDPOINT

START = pendulum.datetime(2026, 1, 1, tz="UTC")
WHERE = {"vendor": "aws", "region": "us-east-1"}
#: the night's choices, best first: an A100, else an L4, else an A10G
CHOICES = [
    {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"},
    {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x1"},
    {**WHERE, "instance_type": "nvidia-a10g", "instance_size": "x1"},
]
FAST = {"poll_interval": 0.1, "timeout": 60, "capacity_timeout": 2}

with DAG("hfep_capacity_resume", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name="cap",
        hardware=CHOICES,
        wait_for_completion=True,
        deferrable=True,
        **FAST,
    )

with DAG("hfep_capacity_sticky", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name="cap",
        hardware=CHOICES,
        hardware_sticky=True,
        wait_for_completion=True,
        **FAST,
    )

with DAG("hfep_capacity_create", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceCreateEndpointOperator(
        task_id="create",
        endpoint_name="cap",
        **{**GPU_ENDPOINT, "instance_type": "nvidia-a100"},
        task="text-generation",
        hardware=CHOICES[1:],
        deferrable=False,
        **FAST,
    )

# The first try is killed (its execution_timeout) while it waits on the second choice; with
# on_kill_action="none" it leaves the endpoint as a killed worker would. The retry goes on from there.
with DAG("hfep_capacity_retry", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name="cap",
        hardware=CHOICES,
        wait_for_completion=True,
        deferrable=False,
        on_kill_action="none",
        execution_timeout=timedelta(seconds=6),  # past the A100's 4 s, before the L4's 8 s
        retries=1,
        retry_delay=timedelta(seconds=0),
        **{**FAST, "capacity_timeout": 4},
    )
with DAG("hfep_capacity_window", schedule=None, start_date=START, catchup=False, tags=["test"]):
    with endpoint_window("cap", hardware=CHOICES, capacity_timeout=2, poke_interval=0.1, wait_timeout=60):
        HuggingFaceEndpointInferenceOperator(
            task_id="infer", endpoint_name="cap", task="text-generation", inputs=["a", "b"]
        )

# Three endpoints, one window. The poll interval is long next to the emulator's deploys: "closed
# within one poll interval" of a failure then means the others were not waited for.
THREE = ["embedder", "reranker", {"name": "generator", "hardware": CHOICES[1:]}]
POLL_SECONDS = 8
with DAG("hfep_capacity_three", schedule=None, start_date=START, catchup=False, tags=["test"]):
    with endpoint_window(THREE, capacity_timeout=60, poke_interval=POLL_SECONDS, wait_timeout=120):
        for name in ("embedder", "reranker", "generator"):
            HuggingFaceEndpointInferenceOperator(
                task_id=f"infer_{name}", endpoint_name=name, task="text-generation", inputs=["a"]
            )
