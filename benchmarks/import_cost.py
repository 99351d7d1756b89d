"""Import cost of the provider on top of Airflow's task SDK, in fresh interpreters.

Each trial is a new Python process that imports ``airflow.sdk`` (the baseline every DAG pays), then
times what a DAG file imports from the provider, one module after the other in one process: the hook,
the lifecycle operators, the inference operator, the window (each figure is what that import adds to
the ones before it), and in another fresh process the whole set at once (what a nightly DAG pays).
Prints medians over the trials.

    .venv/bin/python benchmarks/import_cost.py [--trials 15] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

STEPS = (
    "airflow_provider_hfep.hooks.endpoint",
    "airflow_provider_hfep.operators.endpoint",
    "airflow_provider_hfep.operators.inference",
    "airflow_provider_hfep.window",
)
PROBE = """
import importlib, json, sys, time
t0 = time.perf_counter()
import airflow.sdk
times = {"airflow.sdk": time.perf_counter() - t0}
for module in sys.argv[1:]:
    t0 = time.perf_counter()
    importlib.import_module(module)
    times[module] = time.perf_counter() - t0
print(json.dumps(times))
"""


def sample(modules: tuple[str, ...]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *modules], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.trials = 1
    steps: dict[str, list[float]] = {}
    dag: list[float] = []
    for _ in range(args.trials):
        for key, seconds in sample(STEPS).items():
            steps.setdefault(key, []).append(seconds * 1000)
        dag.append(sample(("airflow_provider_hfep.window",))["airflow_provider_hfep.window"] * 1000)
    print(f"trials: {args.trials} fresh interpreters; medians (min-max) in ms")
    for key, values in steps.items():
        label = key.removeprefix("airflow_provider_hfep.")
        print(f"  import {label:<22} {statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})")
    print(
        f"  a nightly DAG's imports (window: operators, sensor, hook) at once: {statistics.median(dag):.1f}"
    )
    print(
        f"baseline_ms={statistics.median(steps['airflow.sdk']):.1f} "
        f"hook_added_ms={statistics.median(steps[STEPS[0]]):.1f} dag_added_ms={statistics.median(dag):.1f}"
    )


if __name__ == "__main__":
    main()
