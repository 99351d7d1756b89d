"""`make demo`: the nightly batch window, end to end, against a local emulator of the HF cloud.

Starts the emulator with a paused endpoint `batch-endpoint`, runs the example DAG `hf_nightly_batch`
with `airflow dags test` in a throw-away AIRFLOW_HOME, then prints what happened: each task's state,
how many results and a few of them, the billable time (the DAG's cost report beside the emulator's
billing meter) and the endpoint's final state. Leaves no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "hf_nightly_batch"


def main() -> None:
    from airflow_provider_hfep.emulator import Emulator

    with (
        tempfile.TemporaryDirectory(prefix="hfep-demo-") as scratch,
        Emulator(deploy_seconds=3, latency_ms=40) as cloud,
    ):
        home, output = Path(scratch) / "airflow", Path(scratch) / "results"
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "0.5",
        }
        cloud.seed_endpoint(
            "batch-endpoint",
            state="paused",
            model={
                "repository": "HuggingFaceH4/zephyr-7b-beta",
                "framework": "pytorch",
                "task": "text-generation",
                "image": {
                    "tgi": {
                        "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
                        "healthRoute": "/health",
                        "port": 80,
                    }
                },
            },
        )
        print(f"emulator: {cloud.url}; endpoint batch-endpoint is paused")
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
        print(f"running `airflow dags test {DAG_ID}` (log: {scratch}/dags-test.log) ...")
        conf = json.dumps({"output_dir": str(output)})
        with open(Path(scratch) / "dags-test.log", "w") as log:
            done = subprocess.run(
                [AIRFLOW, "dags", "test", DAG_ID, "--conf", conf],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,  # the log is shown when it fails
            )
        os.environ.update(
            {
                k: env[k]
                for k in ("AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES")
            }
        )
        report = show_run(cloud, output)
        meter = cloud.billing("batch-endpoint")
        state = cloud.state("batch-endpoint")
        print(
            f"billable: cost report {report.get('billable_seconds')} s (upper bound, from status timestamps) | emulator meter {meter['billable_seconds']:.1f} s, {meter['requests']} requests"
        )
        print(f"endpoint batch-endpoint is {state}")
        results = sum(
            1 for f in output.rglob("*.jsonl") for line in f.read_text().splitlines() if '"output"' in line
        )
        print(f"demo: {results} results, endpoint {state}, billed {meter['billable_seconds']:.1f} s")
        if done.returncode != 0:
            sys.exit(f"airflow dags test failed (exit {done.returncode}); see the log above")


def show_run(cloud, output: Path) -> dict:
    """Print each task's state and a few results; return the cost report."""
    from airflow.models import DagRun, TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        dagrun = session.query(DagRun).filter_by(dag_id=DAG_ID).order_by(DagRun.id.desc()).first()
        print(f"DAG run {dagrun.run_id}: {dagrun.state}")
        for ti in sorted(
            session.query(TaskInstance).filter_by(dag_id=DAG_ID, run_id=dagrun.run_id),
            key=lambda t: (t.start_date or 0, t.map_index),
        ):
            mapped = f"[{ti.map_index}]" if ti.map_index >= 0 else ""
            print(f"  {ti.task_id + mapped:<34} {ti.state}")
        reports = [
            x.value
            for x in session.query(XComModel).filter_by(
                dag_id=DAG_ID, run_id=dagrun.run_id, key="return_value"
            )
            if x.task_id.endswith("cost_report")
        ]
    report = reports[0] if reports else {}
    if report:
        print(f"cost report: {report['summary']}")
    jobs = [
        json.loads(line) for line in (ROOT / "example_dags/data/nightly_jobs.jsonl").read_text().splitlines()
    ]
    chunk_size = 40  # the DAG's default param
    shown = 0
    for path in sorted(output.rglob("chunk-*.jsonl"), key=lambda f: int(f.stem.split("-")[1])):
        offset = int(path.stem.split("-")[1]) * chunk_size  # indices in a chunk's file are the chunk's own
        for line in path.read_text().splitlines()[: 3 - shown]:
            record = json.loads(line)
            print(
                f"  {jobs[offset + record['index']][:48]!r} -> {str(record.get('output', record.get('error')))[:60]!r}"
            )
            shown += 1
    return report


if __name__ == "__main__":
    main()
