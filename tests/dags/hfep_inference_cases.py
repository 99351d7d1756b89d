"""DAGs for the inference operator tests (dag.test() against the emulator)."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Asset, AssetAlias, task

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

START = pendulum.datetime(2026, 1, 1, tz="UTC")
TIMEOUTS = (1, 2, 3)


def files_dag(dag_id: str) -> DAG:
    """A test DAG whose files are in ``params.dir`` (the test passes its own folder)."""
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, params={"dir": "/tmp"}, tags=["test"])


with DAG("hfep_inference_mapped", schedule=None, start_date=START, catchup=False, tags=["test"]):

    @task
    def chunks() -> list[list[str]]:
        jobs = [f"job number {i}" for i in range(25)]
        return [jobs[i : i + 10] for i in range(0, len(jobs), 10)]

    infer = HuggingFaceEndpointInferenceOperator.partial(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        parameters={"max_new_tokens": 5},
        max_concurrency=4,
    ).expand(inputs=chunks())

    @task
    def gather(results: list[list[str]]) -> list[str]:
        return [text for chunk in results for text in chunk]

    gather(infer.output)

with files_dag("hfep_inference_file"):
    HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        input_path="{{ params.dir }}/jobs.jsonl",
        output_path="{{ params.dir }}/results.jsonl",
    )

# An OpenAI Batch file to an OpenAI batch output file: no task (the lines' urls say it), answers checked
# against a schema.
with files_dag("hfep_inference_openai_batch"):
    HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        input_path="{{ params.dir }}/batch.jsonl",
        output_path="{{ params.dir }}/results.jsonl",
        output_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )

# One operator per task, each on an endpoint serving it (the test seeds them).
TASK_JOBS = {
    "text-generation": ("gen", ["Once upon a time", "The batch ran"]),
    "chat-completion": ("gen", [[{"role": "user", "content": "Hello"}]]),
    "feature-extraction": ("emb", ["embed me"]),
    "text-classification": ("cls", ["I like it"]),
    "summarization": ("sum", ["a long article about nightly batches"]),
    "fill-mask": ("fill", ["the night is <mask>"]),
    "raw": ("emb", [{"inputs": ["x", "y"]}]),
}
with DAG("hfep_inference_tasks", schedule=None, start_date=START, catchup=False, tags=["test"]):
    for task_name, (endpoint, jobs) in TASK_JOBS.items():
        HuggingFaceEndpointInferenceOperator(
            task_id=task_name.replace("-", "_"), endpoint_name=endpoint, task=task_name, inputs=jobs
        )

# A batch far longer than its execution_timeout (5,000 inputs, 2 at a time): stopped, committed, failed.
# Three timeouts, so that the alarm lands at different points of the batch.
with files_dag("hfep_inference_timeout"):
    for seconds in TIMEOUTS:
        HuggingFaceEndpointInferenceOperator(
            task_id=f"infer_{seconds}s",
            endpoint_name="gen",
            task="text-generation",
            input_path=f"{{{{ params.dir }}}}/jobs-{seconds}s.jsonl",
            output_path=f"{{{{ params.dir }}}}/results-{seconds}s.jsonl",
            max_concurrency=2,
            commit_max_results=50,
            commit_max_seconds=3600,  # only the stop's own commit can save the open piece
            execution_timeout=timedelta(seconds=seconds),
        )

# The results announced to downstream DAGs: an AssetAlias outlet gets one Asset per output_path.
with files_dag("hfep_inference_asset"):
    HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        inputs=["a", "b", "c"],
        output_path="{{ params.dir }}/results.jsonl",
        outlets=[AssetAlias("hfep-test-results"), Asset("hfep-test-results-folder")],
    )
