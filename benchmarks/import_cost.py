"""Import cost of the provider on top of Airflow's task SDK, in fresh interpreters.

Each trial is a new Python process that imports ``airflow.sdk`` (the baseline every DAG pays), then
times the provider modules imported after it. Prints medians over the trials.

    .venv/bin/python benchmarks/import_cost.py [--trials 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import airflow_provider_hfep.hooks.endpoint
t2 = time.perf_counter()
import airflow_provider_hfep.endpoints.client
t3 = time.perf_counter()
print(json.dumps({"airflow.sdk": t1 - t0, "hooks.endpoint": t2 - t1, "endpoints.client": t3 - t2}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {}
    for _ in range(args.trials):
        out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout
        for key, seconds in json.loads(out.strip().splitlines()[-1]).items():
            samples.setdefault(key, []).append(seconds * 1000)
    print(f"trials: {args.trials} fresh interpreters; medians (min-max) in ms")
    for key, values in samples.items():
        print(f"  import {key:<18} {statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})")
    added = statistics.median(samples["hooks.endpoint"])
    print(
        f"baseline_ms={statistics.median(samples['airflow.sdk']):.1f} hook_added_ms={added:.1f} "
        f"client_added_ms={statistics.median(samples['endpoints.client']):.1f} goal_ms<=15 {'OK' if added <= 15 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
