"""Two batches the engines make different, each variant in a fresh process against a fresh emulator.

Embeddings: 20,000 texts on a TEI endpoint whose requests take 20 ms plus 0.5 ms per input, 8 in
flight at most (``--latency-ms 20 --item-latency-ms 0.5 --capacity 8``):
  (e1) this runner, batched (the operator's defaults: 32 inputs per request);
  (e2) this runner, one input per request (``batch_size=1``);
  (e3) the peer: ``openai``'s ``AsyncOpenAI.embeddings.create`` with lists of 32 under a semaphore at
       the capacity, retrying 429s with jittered backoff (told the capacity; ours finds it).
Last line of the section: ``embeddings: ratio_vs_single=X ratio_vs_peer=Y lost=N`` for (e1).

Autoscaling: 4,000 text-generation jobs on an endpoint that goes from 1 to 4 replicas under load
(``--latency-ms 200 --capacity 32 --scale-up-seconds 2``; minReplica 1, maxReplica 4):
  (s1) this runner, the operator's defaults (it reads the ready replicas every 2 s);
  (s2) the peer loop (AsyncInferenceClient, retries) with its semaphore fixed at the starting capacity (32);
  (s3) the same with its semaphore fixed at four times it (128).
Last line: ``autoscale: ratio_vs_fixed=X ratio_vs_best_fixed=Y lost=N`` for (s1).

    .venv/bin/python benchmarks/engines_throughput.py [--texts 20000] [--jobs 4000] [--only SECTION] [--smoke]
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
from collections.abc import Callable

from batch_throughput import peer, process_cpu

TEI = {
    "repository": "BAAI/bge-small-en-v1.5",
    "framework": "pytorch",
    "task": "feature-extraction",
    "image": {"tei": {"url": "ghcr.io/huggingface/text-embeddings-inference:1.8"}},
}
EMBED = {"latency_ms": 20, "item_latency_ms": 0.5, "capacity": 8}
SCALE = {"latency_ms": 200, "capacity": 32, "scale_up_seconds": 2.0, "scale_down_seconds": 600.0}
AUTOSCALING = {"accelerator": "gpu", "instanceType": "nvidia-l4", "instanceSize": "x1"}


def ours(url: str, token: str, task: str, jobs: list[str], **settings: object) -> tuple[int, float]:
    """
    The operator's engine, routed as the operator routes: the task as the endpoint's engine serves it,
    the server's stated limits (TGI's and TEI's ``/info``) as the start, run_batch with the defaults.
    """
    import dataclasses

    import httpx

    from airflow_provider_hfep.endpoints import EndpointsClient
    from airflow_provider_hfep.endpoints.transport import BearerAuth
    from airflow_provider_hfep.inference.batch import BatchSettings, batch_client, run_batch
    from airflow_provider_hfep.inference.routing import route_batch

    api_url = url.split("/endpoints/")[0]
    namespace, name = url.split("/endpoints/")[1].split("/")[:2]
    client = EndpointsClient(token, api_url=api_url, hub_url=api_url, namespace=namespace)
    endpoint = client.get(name)
    defaults = BatchSettings(**settings)  # type: ignore[arg-type]
    with httpx.Client(auth=BearerAuth(token), timeout=defaults.request_timeout) as http:
        route = route_batch(endpoint, task, http, timeout=defaults.request_timeout, where=name)
    most = max(1, endpoint.max_replica)
    batch_settings = route.settings_for(
        dataclasses.replace(defaults, max_concurrency=32 * most), endpoint.ready_replicas or 1
    )
    results: dict[int, object] = {}

    async def replicas() -> int | None:
        return (await asyncio.to_thread(client.get, name)).ready_replicas

    async def main() -> None:
        async with batch_client(BearerAuth(token), batch_settings.max_concurrency) as http:
            await run_batch(
                client=http,
                url=url,
                task=route.task,
                items=enumerate(jobs),
                parameters={"max_new_tokens": 8} if task == "text-generation" else {},
                on_result=lambda r: results.__setitem__(r.index, r),
                settings=batch_settings,
                replicas=replicas if most > max(1, endpoint.min_replica) else None,
            )

    started = time.monotonic()
    asyncio.run(main())
    return sum(1 for r in results.values() if r.ok), time.monotonic() - started


def openai_peer(url: str, token: str, texts: list[str], capacity: int) -> tuple[int, float]:
    from openai import AsyncOpenAI, RateLimitError

    async def main() -> int:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key=token, max_retries=0)
        gate = asyncio.Semaphore(capacity)

        async def group(chunk: list[str]) -> int:
            for attempt in range(9):
                async with gate:
                    try:
                        answer = await client.embeddings.create(model="tei", input=chunk)
                        return len(answer.data)
                    except RateLimitError:
                        pass
                await asyncio.sleep(min(10.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            return 0

        chunks = [texts[i : i + 32] for i in range(0, len(texts), 32)]
        return sum(await asyncio.gather(*(group(chunk) for chunk in chunks)))

    started = time.monotonic()
    return asyncio.run(main()), time.monotonic() - started


def hub_peer(url: str, token: str, jobs: list[str], gate_size: int) -> tuple[int, float]:
    # Loaded before the clock starts, as the other variants' libraries are.
    from huggingface_hub import AsyncInferenceClient  # noqa: F401 -- only imported, see above

    started = time.monotonic()
    return peer(url, token, jobs, gate_size), time.monotonic() - started


VARIANTS = {
    "e1": ("(e1) run_batch, batched (defaults)", "embed"),
    "e2": ("(e2) run_batch, batch_size=1", "embed"),
    "e3": ("(e3) peer: AsyncOpenAI, lists of 32", "embed"),
    "s1": ("(s1) run_batch, follows the replicas", "scale"),
    "s2": ("(s2) peer: semaphore fixed at 32", "scale"),
    "s3": ("(s3) peer: semaphore fixed at 128", "scale"),
}


def run_variant(key: str, url: str, count: int) -> tuple[int, float]:
    """Run one variant; return its successes and the seconds of the batch itself (imports and set-up excluded)."""
    token = os.environ["HFEP_BENCH_TOKEN"]
    if VARIANTS[key][1] == "embed":
        texts = [f"a document to embed, number {i}" for i in range(count)]
        if key == "e3":
            return openai_peer(url, token, texts, EMBED["capacity"])
        return ours(url, token, "embeddings", texts, **({"batch_size": 32} if key == "e1" else {}))
    jobs = [f"nightly job {i}" for i in range(count)]
    if key == "s1":
        return ours(url, token, "text-generation", jobs)
    return hub_peer(url, token, jobs, 32 if key == "s2" else 128)


def measure(key: str, count: int) -> tuple[int, float, int, dict, str]:
    from airflow_provider_hfep.emulator import Emulator

    section = VARIANTS[key][1]
    options = EMBED if section == "embed" else SCALE
    with Emulator(**options) as cloud:  # type: ignore[arg-type]
        if section == "embed":
            cloud.seed_endpoint("batch", model=TEI)
        else:
            cloud.seed_endpoint(
                "batch", compute={**AUTOSCALING, "scaling": {"minReplica": 1, "maxReplica": 4}}
            )
        command = [sys.executable, __file__, "--variant", key, "--url", cloud.endpoint_url("batch")]
        command += ["--count", str(count)]
        env = {**os.environ, "HFEP_BENCH_TOKEN": cloud.token}
        emulator_cpu = process_cpu(cloud.pid)
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{key} failed:\n{done.stderr[-3000:]}")
        ok, seconds, client_cpu = json.loads(done.stdout.strip().splitlines()[-1])
        emulator_cpu = process_cpu(cloud.pid) - emulator_cpu
        sent = cloud.requests("inference")
        overloads = sum(1 for r in sent if r["status"] == 429)
        cpu = (
            f"client CPU {1000 * client_cpu / max(1, len(sent)):.2f} ms/request, "
            f"CPU client {client_cpu:.1f} s + emulator {emulator_cpu:.1f} s in {seconds:.1f} s on {os.cpu_count()} cores"
        )
        return ok, seconds, overloads, cloud.load("batch"), cpu


def measure_group(
    keys: tuple[str, ...],
    count: int,
    unit: str,
    detail: Callable[[dict, str], str],
    rates: dict[str, float],
    lost: dict[str, int],
) -> None:
    """Measure each variant in turn and print its line; its rate and losses go to ``rates`` and ``lost``."""
    for key in keys:
        ok, seconds, overloads, load, cpu = measure(key, count)
        rates[key], lost[key] = ok / seconds, count - ok
        print(
            f"  {VARIANTS[key][0]:<40} {ok:6d} ok in {seconds:7.2f} s = {ok / seconds:7.1f} {unit}/s  "
            f"429s={overloads:5d}  lost={lost[key]}  {detail(load, cpu)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=4_000)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    parser.add_argument("--only", choices=["embeddings", "autoscale"], help="run one section")
    args = parser.parse_args()
    if args.smoke:
        args.texts, args.jobs = 320, 128
    if args.variant:  # one variant, in this fresh process: print (ok, seconds, CPU seconds)
        cpu = time.process_time()
        ok, seconds = run_variant(args.variant, args.url, args.count)
        print(json.dumps([ok, seconds, time.process_time() - cpu]))
        return
    rates: dict[str, float] = {}
    lost: dict[str, int] = {}
    if args.only != "autoscale":
        embeddings(args.texts, rates, lost)
    if args.only != "embeddings":
        autoscale(args.jobs, rates, lost)


def embeddings(texts: int, rates: dict[str, float], lost: dict[str, int]) -> None:
    print(
        f"embeddings: {texts} texts on TEI, {EMBED['latency_ms']} ms + {EMBED['item_latency_ms']} ms "
        f"per input a request, capacity {EMBED['capacity']}"
    )
    measure_group(("e1", "e2", "e3"), texts, "texts", lambda load, cpu: cpu, rates, lost)
    print(
        f"embeddings: ratio_vs_single={rates['e1'] / rates['e2']:.2f} "
        f"ratio_vs_peer={rates['e1'] / rates['e3']:.2f} lost={lost['e1']}"
    )


def autoscale(jobs: int, rates: dict[str, float], lost: dict[str, int]) -> None:
    print(
        f"autoscale: {jobs} text-generation jobs, {SCALE['latency_ms']} ms, capacity "
        f"{SCALE['capacity']} a replica, 1 to 4 replicas (one more after {SCALE['scale_up_seconds']} s of load)"
    )
    measure_group(
        ("s1", "s2", "s3"),
        jobs,
        "results",
        lambda load, cpu: f"replicas at the end={load['replicas']}",
        rates,
        lost,
    )
    print(
        f"autoscale: ratio_vs_fixed={rates['s1'] / rates['s2']:.2f} "
        f"ratio_vs_best_fixed={rates['s1'] / max(rates['s2'], rates['s3']):.2f} lost={lost['s1']}"
    )


if __name__ == "__main__":
    main()
