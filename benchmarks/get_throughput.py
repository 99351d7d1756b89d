"""1,000 endpoint GETs against the emulator: the hook's pooled client vs a new httpx client per call.

Both do the same work per call (request, typed error check, parse into an InferenceEndpoint); the
only difference is whether the HTTP connection pool lives across calls. Runs the two side by side,
alternating blocks, in one process.

    .venv/bin/python benchmarks/get_throughput.py [--calls 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import time

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import EndpointsClient


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per variant")
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.calls, args.blocks = 40, 2
    with Emulator(deploy_seconds=0.1) as cloud:
        cloud.seed_endpoint("bench")
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

        hook = HuggingFaceEndpointHook()
        hook.client.get("bench")  # connection lookup and first TCP connect out of the timing
        per_block = args.calls // args.blocks
        timings = {"pooled (hook.client)": 0.0, "new client per call": 0.0}

        def pooled() -> None:
            for _ in range(per_block):
                hook.client.get("bench")

        def fresh() -> None:
            for _ in range(per_block):
                with EndpointsClient(
                    cloud.token, api_url=cloud.url, hub_url=cloud.url, namespace=cloud.user
                ) as client:
                    client.get("bench")

        for _ in range(args.blocks):
            for label, run in (("pooled (hook.client)", pooled), ("new client per call", fresh)):
                started = time.perf_counter()
                run()
                timings[label] += time.perf_counter() - started
        calls = per_block * args.blocks
        rates = {label: calls / seconds for label, seconds in timings.items()}
        for label, rate in rates.items():
            print(f"  {label:<22} {calls} GETs in {timings[label]:6.2f} s = {rate:7.0f} req/s")
        ratio = rates["pooled (hook.client)"] / rates["new client per call"]
        print(
            f"pooled_rps={rates['pooled (hook.client)']:.0f} fresh_rps={rates['new client per call']:.0f} ratio={ratio:.2f}"
        )


if __name__ == "__main__":
    main()
