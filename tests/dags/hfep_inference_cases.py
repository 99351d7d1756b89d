"""DAGs for the inference operator tests (dag.test() against the emulator)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")

with DAG("hfep_inference_mapped", schedule=None, start_date=START, catchup=False, tags=["test"]):

    @task
    def chunks() -> list[list[str]]:
        jobs = [f"job number {i}" for i in range(25)]
        return [jobs[i : i + 10] for i in range(0, len(jobs), 10)]

    infer = HuggingFaceEndpointInferenceOperator.partial(
        task_id="infer", endpoint_name="gen", task="text-generation", parameters={"max_new_tokens": 5}, max_concurrency=4,
    ).expand(inputs=chunks())  # fmt: skip

    @task
    def gather(results: list[list[str]]) -> list[str]:
        return [text for chunk in results for text in chunk]

    gather(infer.output)

with DAG("hfep_inference_file", schedule=None, start_date=START, catchup=False, params={"dir": "/tmp"}, tags=["test"]):
    HuggingFaceEndpointInferenceOperator(
        task_id="infer", endpoint_name="gen", task="text-generation",
        input_path="{{ params.dir }}/jobs.jsonl", output_path="{{ params.dir }}/results.jsonl",
    )  # fmt: skip
