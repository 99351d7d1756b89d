"""Triggerer load: N status triggers in one event loop, as a triggerer runs them, against the emulator.

Each variant runs in a fresh process (so its RSS is its own) with the same N triggers polling an
endpoint that stays "initializing" until their deadline. Measured in that process: CPU seconds per
poll, RSS added per trigger, and TCP connections held to the emulator. Scaled to a 30 s poll
interval: the share of one core the triggers need. Baselines: every trigger opens its own connection
pool (what a client per trigger does without sharing), and the floor: the strongest loop a user would
write by hand, N coroutines sharing one ``httpx.AsyncClient`` of as many connections as the provider's
pool, each doing only GET and ``json()`` then a sleep (no trigger, no model, no "is it there yet"
check). Candidate: the provider's trigger on its shared pool. Last line: ``triggerer:
core_pct_per_1000_waits=X kib_per_wait=Y`` with the baselines' beside.

    .venv/bin/python benchmarks/triggerer_load.py [--triggers 1000] [--poll 2] [--seconds 12] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time

VARIANTS = {
    "own-pool": "own pool per trigger (baseline)",
    "bare-httpx": "bare httpx loop, one client (floor)",
    "shared-pool": "shared pool (provider)",
}


async def _run_triggers(args: argparse.Namespace) -> dict:
    import httpx
    import psutil

    from airflow_provider_hfep.endpoints.transport import SHARED_POOL_CONNECTIONS
    from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger

    if args.variant == "own-pool":
        import airflow_provider_hfep.endpoints.client as client_module

        # each client builds its own httpx client and pool
        client_module.shared_async_client = lambda options, verify, identity: httpx.AsyncClient(**options)
    process = psutil.Process()
    port = int(args.url.rsplit(":", 1)[1])

    def tcp_connections() -> int:
        return sum(
            1
            for c in process.net_connections(kind="tcp")
            if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
        )

    async def trigger_wait(end_time: float) -> dict:
        trigger = HuggingFaceEndpointStatusTrigger(
            hf_conn_id="hf_inference_endpoints_default",
            endpoint_name="load",
            namespace="demo",
            end_time=end_time,
            poll_interval=args.poll,
        )
        return await anext(event.payload async for event in trigger.run())

    floor_client = (
        httpx.AsyncClient(
            base_url=args.url,
            headers={"authorization": f"Bearer {os.environ['HFEP_BENCH_TOKEN']}"},
            limits=httpx.Limits(max_connections=SHARED_POOL_CONNECTIONS),
        )
        if args.variant == "bare-httpx"
        else None
    )

    async def bare_wait(end_time: float) -> dict:
        assert floor_client is not None
        while True:
            answer = await floor_client.get("/v2/endpoint/demo/load")
            answer.raise_for_status()
            state = answer.json()["status"]["state"]
            if time.time() >= end_time:
                return {"status": "timeout", "state": state}
            await asyncio.sleep(min(args.poll * random.uniform(0.9, 1.1), max(0.0, end_time - time.time())))

    one = trigger_wait if floor_client is None else bare_wait

    def cpu() -> float:
        times = process.cpu_times()
        return times.user + times.system

    await one(time.time())  # warm imports and the first connection lookup
    rss_before = process.memory_info().rss
    cpu_start = cpu()
    started = time.time()
    tasks = [asyncio.ensure_future(one(started + args.seconds)) for _ in range(args.triggers)]
    # Steady state: from the end of the first poll round (every trigger started) to just before the deadline.
    await asyncio.sleep(args.poll * 1.5)
    window_start, cpu_window_start = time.time(), cpu()
    startup_cpu = cpu_window_start - cpu_start
    remaining = max(0.0, started + args.seconds - 1.0 - time.time())
    await asyncio.sleep(remaining / 2)
    # One sample in the middle of the window: listing sockets blocks the loop, so it is taken once.
    connections = tcp_connections()
    await asyncio.sleep(max(0.0, started + args.seconds - 1.0 - time.time()))
    window_end, cpu_window_end = time.time(), cpu()
    rss_steady = process.memory_info().rss
    events = await asyncio.gather(*tasks)
    if floor_client is not None:
        await floor_client.aclose()
    return {
        "startup_cpu_seconds": startup_cpu,
        "window": [window_start, window_end],
        "window_cpu_seconds": cpu_window_end - cpu_window_start,
        "rss_per_trigger_kib": (rss_steady - rss_before) / args.triggers / 1024,
        "tcp_connections": connections,
        "timeouts": sum(e["status"] == "timeout" for e in events),
    }


def worker(args: argparse.Namespace) -> None:
    print(json.dumps(asyncio.run(_run_triggers(args))))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll", type=float, default=2.0, help="poll interval during the measurement (s)")
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--variant", choices=sorted(VARIANTS))
    parser.add_argument("--url")
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    args = parser.parse_args()
    if args.smoke:
        args.triggers, args.poll, args.seconds = 20, 0.5, 4.0
    if args.variant:
        worker(args)
        return

    from airflow_provider_hfep.emulator import Emulator

    with Emulator() as cloud:
        print(
            f"{args.triggers} triggers, poll every {args.poll} s for {args.seconds} s, one event loop per variant"
        )
        results = {}
        for variant, label in VARIANTS.items():
            cloud.reset()
            cloud.seed_endpoint(
                "load", state="initializing"
            )  # never running: every trigger polls to its deadline
            env = {
                **os.environ,
                "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
                "HFEP_BENCH_TOKEN": cloud.token,
            }
            command = [
                sys.executable,
                __file__,
                "--variant",
                variant,
                "--url",
                cloud.url,
                "--triggers",
                str(args.triggers),
                "--poll",
                str(args.poll),
                "--seconds",
                str(args.seconds),
            ]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            reads = [r for r in cloud.requests("management") if r["path"] == "/v2/endpoint/demo/load"]
            start, end = result["window"]
            polls = sum(start <= r["time"] < end for r in reads)
            result["polls"] = polls
            result["cpu_per_poll_ms"] = 1000 * result["window_cpu_seconds"] / polls if polls else None
            # at a 30 s interval each trigger polls 1/30 times a second
            result["core_share_at_30s"] = (
                args.triggers / 30 * result["window_cpu_seconds"] / polls if polls else None
            )
            results[variant] = result
            steady = (
                f"cpu/poll={result['cpu_per_poll_ms']:.2f} ms core@30s={100 * result['core_share_at_30s']:.2f}%"
                if polls
                else "cpu/poll=n/a (no steady state: still starting its triggers)"
            )
            print(
                f"  {label:<36} steady polls={polls:6d} {steady} start-up cpu={1000 * result['startup_cpu_seconds'] / args.triggers:.1f} ms/trigger "
                f"rss/trigger={result['rss_per_trigger_kib']:.1f} KiB tcp={result['tcp_connections']} timeouts={result['timeouts']}/{args.triggers}"
            )
        shared, baseline, floor = results["shared-pool"], results["own-pool"], results["bare-httpx"]

        def per_1000_waits(result: dict) -> str:
            share = result["core_share_at_30s"]
            return "n/a" if share is None else f"{100 * share * 1000 / args.triggers:.2f}"

        print(
            f"  tcp_connections={shared['tcp_connections']} baseline_tcp_connections={baseline['tcp_connections']}"
        )
        # The goal's units: % of one core for 1,000 waits polling every 30 s, and RSS each wait adds.
        print(
            f"triggerer: core_pct_per_1000_waits={per_1000_waits(shared)} (goal <=2.0) "
            f"kib_per_wait={shared['rss_per_trigger_kib']:.1f} (goal <=40) "
            f"baseline_core_pct_per_1000_waits={per_1000_waits(baseline)} "
            f"baseline_kib_per_wait={baseline['rss_per_trigger_kib']:.1f} "
            f"floor_core_pct_per_1000_waits={per_1000_waits(floor)} "
            f"floor_kib_per_wait={floor['rss_per_trigger_kib']:.1f}"
        )


if __name__ == "__main__":
    main()
