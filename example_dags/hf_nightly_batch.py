"""The nightly batch window: at 01:30 Paris time, wake the paused endpoint, wait until it serves, run
the night's jobs through it in mapped chunks, write the results, and pause it again, even when
something fails, so it costs nothing by day. A cost report says how long it was billable.

The jobs are a JSON Lines file (one prompt per line); the example ships a small one. Run it against
the local emulator with `make demo`, or by hand:

    hfep-emulator &          # then seed a paused endpoint "batch-endpoint" and point the connection at it
    airflow dags test hf_nightly_batch
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, task
from airflow.timetables.trigger import CronTriggerTimetable

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.window import endpoint_window

ENDPOINT = "batch-endpoint"
JOBS = str(Path(__file__).parent / "data" / "nightly_jobs.jsonl")
# Seconds between two looks at the endpoint while it starts. Real starts take minutes; the tests and the
# demo run against the emulator, which starts in seconds, with a shorter interval.
POLL_SECONDS = float(os.environ.get("HFEP_EXAMPLE_POLL_SECONDS", "30"))
# Seconds one inference request may take before it is retried (the fault tests shorten it).
REQUEST_TIMEOUT = float(os.environ.get("HFEP_EXAMPLE_REQUEST_TIMEOUT", "60"))
# A chunk whose worker died is retried after this many seconds; with output_path, the retry sends only
# the jobs that have no result in the file yet.
RETRY_SECONDS = float(os.environ.get("HFEP_EXAMPLE_RETRY_SECONDS", "120"))

with DAG(
    dag_id="hf_nightly_batch",
    schedule=CronTriggerTimetable("30 1 * * *", timezone="Europe/Paris"),
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    max_active_runs=1,
    params={"jobs_path": JOBS, "chunk_size": 40, "output_dir": "/tmp/hf_nightly_batch"},
    tags=["huggingface", "example"],
    doc_md=__doc__,
):
    with endpoint_window(ENDPOINT, poke_interval=POLL_SECONDS, wait_timeout=3600):

        @task
        def read_jobs(params=None) -> list[list[str]]:
            """The night's prompts, in chunks (one mapped inference task per chunk)."""
            with ObjectStoragePath(params["jobs_path"]).open("r") as jobs_file:
                jobs = [json.loads(line) for line in jobs_file.read().splitlines() if line.strip()]
            size = int(params["chunk_size"])
            return [jobs[i : i + size] for i in range(0, len(jobs), size)]

        infer = HuggingFaceEndpointInferenceOperator.partial(
            task_id="infer",
            endpoint_name=ENDPOINT,
            task="text-generation",
            parameters={"max_new_tokens": 24},
            output_path="{{ params.output_dir }}/{{ run_id | replace(':', '-') }}/chunk-{{ ti.map_index }}.jsonl",
            max_concurrency=16,
            request_timeout=REQUEST_TIMEOUT,
            retries=2,
            retry_delay=timedelta(seconds=RETRY_SECONDS),
            # each finished chunk file is announced: hf_nightly_results runs on it
            outlets=[AssetAlias("hf-nightly-results")],
        ).expand(inputs=read_jobs())

        @task
        def summarize(outcomes: list[dict]) -> dict:
            """One summary for the night: how many results, where they are."""
            summary = {
                "results": sum(o["summary"]["succeeded"] for o in outcomes),
                "failed": sum(o["summary"]["failed"] for o in outcomes),
                "files": sorted(o["output_path"] for o in outcomes),
            }
            print(
                f"nightly batch: {summary['results']} results, {summary['failed']} failed, in {len(summary['files'])} files"
            )
            return summary

        summarize(infer.output)
