"""DAGs for the window tests: the same window around work that succeeds, fails, or is absent."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

START = pendulum.datetime(2026, 1, 1, tz="UTC")

for close in ("pause", "scale_to_zero"):
    with DAG(f"hfep_window_{close}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        with endpoint_window("win", close=close, poke_interval=0.1, wait_timeout=20):
            HuggingFaceEndpointInferenceOperator(
                task_id="infer", endpoint_name="win", task="text-generation", inputs=["a", "b", "c"]
            )

with DAG("hfep_window_work_fails", schedule=None, start_date=START, catchup=False, tags=["test"]):
    with endpoint_window("win", poke_interval=0.1, wait_timeout=20):

        @task
        def prepare() -> list[str]:
            return ["fine"]

        @task
        def explode(prompts: list[str]) -> None:
            raise RuntimeError("the work failed")

        explode(prepare())

with DAG("hfep_window_sensor_times_out", schedule=None, start_date=START, catchup=False, tags=["test"]):
    with endpoint_window("win", poke_interval=0.1, wait_timeout=2):
        HuggingFaceEndpointInferenceOperator(
            task_id="infer", endpoint_name="win", task="text-generation", inputs=["a"]
        )

with DAG("hfep_window_capped", schedule=None, start_date=START, catchup=False, tags=["test"]):
    with endpoint_window("win", poke_interval=0.1, wait_timeout=20, max_runtime=3):

        @task
        def chunks() -> list[list[str]]:
            return [[f"job {c}-{i}" for i in range(20000)] for c in range(2)]

        HuggingFaceEndpointInferenceOperator.partial(
            task_id="infer", endpoint_name="win", task="text-generation", max_concurrency=2
        ).expand(inputs=chunks())
