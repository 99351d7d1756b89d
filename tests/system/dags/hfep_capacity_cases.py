"""A window over two endpoints, one of which falls back to its second hardware choice: on `airflow standalone`."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

WHERE = {"vendor": "aws", "region": "us-east-1"}
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
                "hardware": [
                    {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"},
                    {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x1"},
                ],
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
