"""Windows with caps around a batch far longer than the caps allow, for the cost-guarantee system tests.

Each DAG runs `params.jobs_path` through endpoint `capped` into `params.output_dir` (2 requests in
flight, so the batch lasts minutes against the emulator) inside a window with one cap: `max_runtime`
(20 s) or `max_cost` (20 s of the instance's $0.8 an hour). `stop_at` is a time fixed when the DAG is
parsed: its test writes a DAG file of its own with `capped_dag` (tests/system/test_cost_guarantees.py).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

#: seconds a capped window may stay open, and the cost of as many seconds of the emulator's nvidia-l4 x1
CAP_SECONDS = 20
PRICE_PER_HOUR = 0.8
POKE_SECONDS = 2

CAPS = {
    "hfep_cap_max_runtime": {"max_runtime": CAP_SECONDS},
    "hfep_cap_max_cost": {"max_cost": CAP_SECONDS * PRICE_PER_HOUR / 3600},
}


def capped_dag(dag_id: str, **caps: object) -> DAG:
    """A window with ``caps`` around a batch far longer than they allow."""
    with DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        tags=["test"],
        params={"jobs_path": "", "output_dir": ""},
    ) as dag:
        with endpoint_window("capped", poke_interval=POKE_SECONDS, wait_timeout=120, **caps):
            HuggingFaceEndpointInferenceOperator(
                task_id="infer",
                endpoint_name="capped",
                task="text-generation",
                input_path="{{ params.jobs_path }}",
                output_path="{{ params.output_dir }}/results.jsonl",
                max_concurrency=2,
            )
    return dag


for dag_id, caps in CAPS.items():
    capped_dag(dag_id, **caps)
