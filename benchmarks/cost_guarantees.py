"""
The night's bill has a ceiling: three figures, baseline beside candidate in one run, against the emulator.

1. Airflow dies mid-batch (nothing will ever pause the endpoint): billed time after the last request,
   without the safety net (the baseline: it bills until someone notices; here, the whole observation
   horizon) and with ``idle_stop_minutes`` = 1, 5, 15. The net is what the window's resume sets
   (``idle_stop_scaling``); the emulator scales the endpoint to zero as the service does. Emulated
   minutes last ``--minute-seconds``; figures are given in emulated minutes.
2. Overshoot past ``max_runtime`` and ``max_cost`` at three cap values: replica-seconds billed after
   the cap, with the budget trigger (as the triggerer runs it, ``poll_interval`` 30 s) watching a batch
   that would go on for much longer. Goal: at most one ``poke_interval``.
3. The watch's cost: N budget triggers in one event loop (as a triggerer runs them), each watching a
   running endpoint whose caps are far away: CPU and memory per watched window, scaled to a 30 s poll.

    .venv/bin/python benchmarks/cost_guarantees.py [--minute-seconds 0.2] [--windows 100] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import httpx

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import EndpointsClient, EndpointUpdate
from airflow_provider_hfep.endpoints.costs import Budget, idle_stop_scaling
from airflow_provider_hfep.triggers.budget import HuggingFaceEndpointBudgetTrigger

PRICE = 0.8  # the emulator's nvidia-l4 x1, USD per replica-hour


def client(cloud: Emulator) -> EndpointsClient:
    return EndpointsClient(
        cloud.token, api_url=cloud.url, hub_url=cloud.url, catalog_url=cloud.catalog_url, namespace=cloud.user
    )


def wait_for(condition, limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition never held")
        time.sleep(0.02)


def billed_after_death(cloud: Emulator, net: int | None, horizon_minutes: float, minute: float) -> float:
    """Emulated minutes billed after the last request, when nothing ever closes the endpoint."""
    cloud.reset()
    cloud.seed_endpoint("night", state="paused")
    with client(cloud) as api:
        if net is not None:
            change = idle_stop_scaling(api.get("night"), net)
            if change:
                api.update("night", EndpointUpdate(**change))
        api.resume("night")
        wait_for(lambda: cloud.state("night") == "running", 30)
    headers = {"authorization": f"Bearer {cloud.token}"}
    with httpx.Client(headers=headers, timeout=30) as http:
        for i in range(50):  # the night's work, until Airflow dies
            http.post(cloud.endpoint_url("night"), json={"inputs": f"job {i}"})
    at_death = cloud.billing("night")["billable_seconds"]
    time.sleep(horizon_minutes * minute)  # nobody pauses it
    return (cloud.billing("night")["billable_seconds"] - at_death) / minute


async def overshoot(cloud: Emulator, budget: dict) -> float:
    """Seconds billed past the cap, while a batch keeps the endpoint busy, the budget trigger watching."""
    cloud.reset()
    cloud.seed_endpoint("capped", state="running")
    since = time.time()
    trigger = HuggingFaceEndpointBudgetTrigger(
        hf_conn_id="hf_inference_endpoints_default",
        endpoint_name="capped",
        namespace="demo",
        since=since,
        budget=Budget(**budget).to_json(),
        poll_interval=30,
    )

    async def work() -> None:
        async with httpx.AsyncClient(headers={"authorization": f"Bearer {cloud.token}"}, timeout=30) as http:
            while True:
                await http.post(cloud.endpoint_url("capped"), json={"inputs": "busy"})

    busy = asyncio.ensure_future(work())
    event = await anext(e.payload async for e in trigger.run())
    busy.cancel()
    cap_at = event["cap"]["at"]
    replicas = cloud.api("GET", "/v2/endpoint/demo/capped/replica").json()["replicas"]
    from datetime import datetime

    stopped = max(datetime.fromisoformat(r["stoppedAt"].replace("Z", "+00:00")).timestamp() for r in replicas)
    return stopped - cap_at


async def watch_cost(cloud: Emulator, windows: int, seconds: float, poll: float) -> dict:
    import psutil

    cloud.reset()
    for index in range(windows):
        cloud.seed_endpoint(f"w{index}", state="running")
    process = psutil.Process()

    def cpu() -> float:
        times = process.cpu_times()
        return times.user + times.system

    def trigger(index: int) -> HuggingFaceEndpointBudgetTrigger:
        return HuggingFaceEndpointBudgetTrigger(
            hf_conn_id="hf_inference_endpoints_default",
            endpoint_name=f"w{index}",
            namespace="demo",
            since=time.time(),
            budget=Budget(max_runtime=3600, max_cost=100.0).to_json(),
            poll_interval=poll,
        )

    async def one(index: int) -> None:
        async for _ in trigger(index).run():
            return

    rss_before, cpu_before = process.memory_info().rss, cpu()
    reads_before = len(cloud.requests("management"))
    tasks = [asyncio.ensure_future(one(i)) for i in range(windows)]
    await asyncio.sleep(seconds)
    rss, used = process.memory_info().rss, cpu() - cpu_before
    for task in tasks:
        task.cancel()
    reads = len(cloud.requests("management")) - reads_before
    polls = windows * seconds / poll
    return {
        "cpu_per_poll_ms": 1000 * used / polls,
        "core_pct_per_window_at_30s": 100 * (used / polls) / 30,
        "kib_per_window": (rss - rss_before) / 1024 / windows,
        "requests_per_poll": reads / polls,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minute-seconds", type=float, default=0.2)
    parser.add_argument("--windows", type=int, default=100)
    parser.add_argument("--watch-seconds", type=float, default=30.0)
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    args = parser.parse_args()
    nets = [None, 1, 5, 15] if not args.smoke else [None, 1]
    horizon = 30 if not args.smoke else 3
    runtime_caps = [2.0, 4.0, 8.0] if not args.smoke else [1.0]
    with Emulator(
        minute_seconds=args.minute_seconds,
        deploy_seconds=0.2,
        cold_start_seconds=0.2,
        latency_ms=5,
        request_log_size=500_000,
    ) as cloud:
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        print(
            f"1. Airflow dies mid-batch: emulated minutes billed after the last request (horizon {horizon} min)"
        )
        for net in nets:
            billed = billed_after_death(cloud, net, horizon, args.minute_seconds)
            label = "no net (baseline)" if net is None else f"idle_stop_minutes={net}"
            goal = "" if net is None else f" (goal <= {net + 1})"
            print(f"   {label:28} billed {billed:5.2f} min after the last request{goal}")
        print("2. Overshoot past a cap (billed seconds past it; poll_interval 30 s)")
        for seconds in runtime_caps:
            late = asyncio.run(overshoot(cloud, {"max_runtime": seconds}))
            print(f"   max_runtime={seconds:g} s                 {late:5.2f} s past the cap")
            late = asyncio.run(overshoot(cloud, {"max_cost": seconds * PRICE / 3600}))
            print(f"   max_cost=${seconds * PRICE / 3600:.6f} ({seconds:g} s)  {late:5.2f} s past the cap")
        windows = args.windows if not args.smoke else 5
        figures = asyncio.run(
            watch_cost(cloud, windows, args.watch_seconds if not args.smoke else 3, poll=5.0)
        )
        print(
            f"3. The watch: {windows} windows, poll 5 s: {figures['cpu_per_poll_ms']:.2f} ms CPU a look, "
            f"{figures['requests_per_poll']:.1f} requests a look, "
            f"watch: core_pct_per_window_at_30s={figures['core_pct_per_window_at_30s']:.4f} "
            f"kib_per_window={figures['kib_per_window']:.1f}"
        )


if __name__ == "__main__":
    main()
