"""Worker-slot seconds spent waiting 60 s for `running`: poke, reschedule, deferrable, started in the triggerer.

A real `airflow standalone` (scheduler, triggerer, LocalExecutor) runs one DAG with four sensors on the
same endpoint, which the emulator brings to `running` 60 s after it is created: one in poke mode, one
in reschedule mode (both ``deferrable=False``), one deferrable (the default), one deferrable that
starts in the triggerer (``start_from_trigger=True``). The task instance records are sampled through
the REST API every 0.25 s and the time each spends in `running` (holding a worker slot) and in
`deferred` (holding none) is summed. Reschedule mode also counts worker process starts: each poke is a
new task process (the tries' start dates, from the task instance history).

    .venv/bin/python benchmarks/worker_slot_seconds.py [--wait 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from airflow_provider_hfep.emulator import Emulator

from tests.system.standalone import Standalone

DAG = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

    with DAG("hfep_slot_bench", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
        HuggingFaceEndpointSensor(task_id="poke", endpoint_name="slow", deferrable=False, mode="poke", poke_interval=5, timeout=600)
        HuggingFaceEndpointSensor(task_id="reschedule", endpoint_name="slow", deferrable=False, mode="reschedule", poke_interval=5, timeout=600)
        HuggingFaceEndpointSensor(task_id="deferrable", endpoint_name="slow", poke_interval=5, timeout=600)
        HuggingFaceEndpointSensor(task_id="from_trigger", endpoint_name="slow", start_from_trigger=True, poke_interval=5, timeout=600)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wait", type=float, default=60.0, help="seconds until the endpoint runs")
    args = parser.parse_args()
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
            entered_running: dict[str, int] = dict.fromkeys(seconds, 0)
            previous: dict[str, str | None] = dict.fromkeys(seconds)
            cloud.seed_endpoint("slow", state="pending")  # runs args.wait seconds from now
            run_id = airflow.trigger("hfep_slot_bench")
            last = time.monotonic()
            while airflow.run_state("hfep_slot_bench", run_id) not in ("success", "failed"):
                time.sleep(0.25)
                now = time.monotonic()
                for task, state in airflow.task_states("hfep_slot_bench", run_id).items():
                    seconds[task][state or "none"] = seconds[task].get(state or "none", 0.0) + (now - last)
                    entered_running[task] += state == "running" and previous[task] != "running"
                    previous[task] = state
                last = now
            states = airflow.task_states("hfep_slot_bench", run_id)
            triggerer_saw_it = "Trigger fired event" in "".join(
                p.read_text(errors="replace") for p in (Path(scratch) / "home" / "logs").rglob("*trigger*")
            ) or "HuggingFaceEndpointStatusTrigger" in airflow.log_path.read_text(errors="replace")
        print(f"endpoint running {args.wait:.0f} s after creation; final states: {states}")
        for task, spent in seconds.items():
            other = sum(v for k, v in spent.items() if k not in ("running", "deferred", "up_for_reschedule"))
            print(
                f"  {task:<12} running={spent.get('running', 0):6.1f} s  deferred={spent.get('deferred', 0):6.1f} s  "
                f"up_for_reschedule={spent.get('up_for_reschedule', 0):6.1f} s  other={other:6.1f} s  "
                f"times seen entering running={entered_running[task]}"
            )
        print(f"trigger ran in the triggerer: {triggerer_saw_it}")
        print(
            "worker_slot_seconds "
            + " ".join(f"{task}={spent.get('running', 0):.1f}" for task, spent in seconds.items())
        )


if __name__ == "__main__":
    main()
