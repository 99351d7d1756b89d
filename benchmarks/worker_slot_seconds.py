"""Worker-slot seconds spent waiting 60 s for `running`: the deferrable sensor vs poke mode.

A real `airflow standalone` (scheduler, triggerer, LocalExecutor) runs one DAG with two sensors on the
same endpoint, which the emulator brings to `running` 60 s after it is created: one sensor deferrable,
one in poke mode. The task instance records are sampled through the REST API every 0.25 s and the
time each spends in `running` (holding a worker slot) and in `deferred` (holding none) is summed.

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
        HuggingFaceEndpointSensor(task_id="deferrable", endpoint_name="slow", deferrable=True, poke_interval=5, timeout=600)
        HuggingFaceEndpointSensor(task_id="poke", endpoint_name="slow", deferrable=False, mode="poke", poke_interval=5, timeout=600)
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
            seconds: dict[str, dict[str, float]] = {"deferrable": {}, "poke": {}}
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
            triggerer_saw_it = "Trigger fired event" in "".join(
                p.read_text(errors="replace") for p in (Path(scratch) / "home" / "logs").rglob("*trigger*")
            ) or "HuggingFaceEndpointStatusTrigger" in airflow.log_path.read_text(errors="replace")
        print(f"endpoint running {args.wait:.0f} s after creation; final states: {states}")
        for task, spent in seconds.items():
            print(
                f"  {task:<11} running={spent.get('running', 0):6.1f} s  deferred={spent.get('deferred', 0):6.1f} s  "
                f"other={sum(v for k, v in spent.items() if k not in ('running', 'deferred')):6.1f} s"
            )
        print(f"trigger ran in the triggerer: {triggerer_saw_it}")
        print(
            f"worker_slot_seconds deferrable={seconds['deferrable'].get('running', 0):.1f} poke={seconds['poke'].get('running', 0):.1f}"
        )


if __name__ == "__main__":
    main()
