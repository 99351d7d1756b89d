"""Downstream of the nightly batch: runs when results are ready, wherever they were written.

Each chunk of `hf_nightly_batch` adds an Asset for its `output_path` to the alias `hf-nightly-results`
once its file is complete (joined, each input once). This DAG is scheduled on that alias: Airflow starts
it for those asset events, and it reads the files the events name: the event's `extra["output_path"]` is
the path as the batch wrote it (`s3://<conn_id>@bucket/key` included), `extra["uri"]` the Asset's URI.
"""

from __future__ import annotations

import json

import pendulum
from airflow.sdk import DAG, AssetAlias, ObjectStoragePath, task

RESULTS = AssetAlias("hf-nightly-results")

with DAG(
    dag_id="hf_nightly_results",
    schedule=[RESULTS],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Paris"),
    catchup=False,
    tags=["huggingface", "example"],
    doc_md=__doc__,
):

    @task
    def count_results(triggering_asset_events=None) -> dict[str, int]:
        """Read each file the triggering events name; count its results (a report, a load, ...)."""
        counts = {}
        for events in (triggering_asset_events or {}).values():
            for event in events:
                path = event.extra["output_path"]
                with ObjectStoragePath(path).open("r") as results:  # streamed: a night's file can be large
                    lines = iter(results.readline, "")  # (Airflow 3.0's files cannot be iterated)
                    counts[path] = sum(1 for line in lines if "output" in json.loads(line))
        print(f"nightly results: {sum(counts.values())} outputs in {len(counts)} files")
        return counts

    count_results()
