"""Worker-slot seconds spent waiting 60 s for `running`: poke, reschedule, deferrable, started in the triggerer.

A real `airflow standalone` (scheduler, triggerer, LocalExecutor) runs one DAG with four sensors on the
same endpoint, which the emulator brings to `running` 60 s after it is created: one in poke mode, one
in reschedule mode (both ``deferrable=False``), one deferrable (the default), one deferrable that
starts in the triggerer (``start_from_trigger=True``). The task instance records are sampled through
the REST API every 0.25 s and the time each spends in `running` (holding a worker slot) and in
`deferred` (holding none) is summed. Reschedule mode also counts worker process starts: each poke is a
new task process (counted as the times it was seen entering `running`). The poke interval is 10 s:
at 5 s, Airflow 3.3.2's LocalExecutor on this 2-core machine sometimes reports a rescheduled poke's exit
after the next poke was queued, and marks the task failed ("state changed externally"); a failed task's
reason is printed from the scheduler's log.

    .venv/bin/python benchmarks/worker_slot_seconds.py [--wait 60] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import textwrap
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from airflow_provider_hfep.emulator import Emulator

from tests.system.standalone import Standalone


def worker_runs(logs: Path, task: str) -> list[float]:
    """Seconds of each worker process of ``task``, from its task log: "Pre Execute" to its last line.

    Exact where the REST API sampling (every 0.25 s) misses short runs: a reschedule poke or the few
    lines that end a deferral. A lower bound of the slot time: the process's start-up before its first
    log line is not counted.
    """
    runs: list[list[float]] = []
    worker_logs = logs.glob(f"dag_id=hfep_slot_bench/*/task_id={task}/attempt=*.log")
    for path in sorted(p for p in worker_logs if ".trigger." not in p.name):  # not the triggerer's logs
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
                stamp = datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).timestamp()
            except (ValueError, KeyError, TypeError):
                continue
            if record.get("event") == "::group::Pre Execute":
                runs.append([stamp, stamp])
            elif runs:
                runs[-1][1] = stamp
    return [end - start for start, end in runs]


DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

    with DAG("hfep_slot_bench", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        HuggingFaceEndpointSensor(task_id="poke", endpoint_name="slow", deferrable=False, mode="poke", poke_interval=10, timeout=600)
        HuggingFaceEndpointSensor(task_id="reschedule", endpoint_name="slow", deferrable=False, mode="reschedule", poke_interval=10, timeout=600)
        HuggingFaceEndpointSensor(task_id="deferrable", endpoint_name="slow", poke_interval=10, timeout=600)
        HuggingFaceEndpointSensor(task_id="from_trigger", endpoint_name="slow", start_from_trigger=True, poke_interval=10, timeout=600)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wait", type=float, default=60.0, help="seconds until the endpoint runs")
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.wait = 15.0
    with tempfile.TemporaryDirectory() as scratch, Emulator(deploy_seconds=args.wait) as cloud:
        dags = Path(scratch) / "dags"
        dags.mkdir()
        (dags / "hfep_slot_bench.py").write_text(DAG)
        env = {"AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection()}
        with Standalone(Path(scratch) / "home", dags, env) as airflow:
            airflow.wait_for_dag("hfep_slot_bench")
            seconds: dict[str, dict[str, float]] = {
                "poke": {},
                "reschedule": {},
                "deferrable": {},
                "from_trigger": {},
            }
            cloud.seed_endpoint("slow", state="pending")  # runs args.wait seconds from now
            run_id = airflow.trigger("hfep_slot_bench")
            last = time.monotonic()
            while airflow.run_state("hfep_slot_bench", run_id) not in ("success", "failed"):
                time.sleep(0.25)
                now = time.monotonic()
                for task, state in airflow.task_states("hfep_slot_bench", run_id).items():
                    seconds[task][state or "none"] = seconds[task].get(state or "none", 0.0) + (now - last)
                last = now
            states = airflow.task_states("hfep_slot_bench", run_id)
            scheduler_log = airflow.log_path.read_text(errors="replace").splitlines()
            reasons = {
                task: next(
                    (
                        line
                        for line in scheduler_log
                        if f"hfep_slot_bench.{task} " in line and "[error" in line
                    ),
                    "no error line in the scheduler's log",
                )
                for task, state in states.items()
                if state != "success"
            }
            runs = {task: worker_runs(Path(scratch) / "home" / "logs", task) for task in seconds}
            triggerer_saw_it = "Trigger fired event" in "".join(
                p.read_text(errors="replace")
                for p in (Path(scratch) / "home" / "logs").rglob("*trigger*")
                if p.is_file()
            ) or "HuggingFaceEndpointStatusTrigger" in airflow.log_path.read_text(errors="replace")
        print(f"endpoint running {args.wait:.0f} s after creation; final states: {states}")
        print("  sampled states (REST API, every 0.25 s), then worker processes counted from the task logs:")
        for task, spent in seconds.items():
            other = sum(v for k, v in spent.items() if k not in ("running", "deferred", "up_for_reschedule"))
            print(
                f"  {task:<12} running={spent.get('running', 0):6.1f} s  deferred={spent.get('deferred', 0):6.1f} s  "
                f"up_for_reschedule={spent.get('up_for_reschedule', 0):6.1f} s  other={other:6.1f} s  | "
                f"{len(runs[task])} worker process(es), {sum(runs[task]):.1f} s in all"
            )
        for task, reason in reasons.items():
            print(f"  {task} did not succeed: {reason[:300]}")
        print(f"trigger ran in the triggerer: {triggerer_saw_it}")
        print("worker_slot_seconds " + " ".join(f"{task}={sum(runs[task]):.1f}" for task in seconds))


if __name__ == "__main__":
    main()
