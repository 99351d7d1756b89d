"""Batch throughput against one emulator endpoint (--latency-ms 50 --capacity 32), side by side:

(a) the seed's sequential loop: huggingface_hub InferenceClient.text_generation in a for loop;
(b) the seed's async form: AsyncInferenceClient + asyncio.gather over all jobs;
(d) the peer: the strongest loop a huggingface_hub user would write, AsyncInferenceClient with a
    semaphore at the endpoint's capacity and retries with jittered exponential backoff on 429, 503
    and connection errors (told the capacity, which our runner has to find out);
(c) this provider's runner (run_batch, the operator's engine) with the operator's defaults;
(c') the same runner allowed 256 in flight, to show it settles at what the endpoint accepts;
(f) the floor: a bare httpx.AsyncClient loop under a semaphore(32), no retries, no parsing beyond
    json(): what any client pays at least on this machine;
(f') the same floor with its 32 connections in 4 clients of 8 taken in turn: httpcore scans a pool's
    connections on every request, so small pools are the stronger floor. ratio_vs_floor is against
    the faster of the two.

Each variant runs in a fresh process against a fresh emulator. For each: successful results per
second, the 429 (overload) answers it caused, items lost, and where the time goes: the client
process's CPU per request (user + system) and the emulator's CPU in the same run (both share the
machine's cores, so a client that costs less leaves more to the emulator). Then peak RSS of the operator on a
file-to-file batch (10,000 and 100,000 items), each in a fresh process. The last line is
`ratio_vs_ideal=X ratio_vs_peer=Y ratio_vs_floor=Z lost=N` for (c).

    .venv/bin/python benchmarks/batch_throughput.py [--jobs 2000] [--rss-items 100000] [--quick] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LATENCY_MS = 50
CAPACITY = 32


def prompts(count: int) -> list[str]:
    return [f"nightly job {i}" for i in range(count)]


def sequential(url: str, token: str, jobs: list[str]) -> int:
    from huggingface_hub import InferenceClient

    client = InferenceClient(model=url, token=token)
    ok = 0
    for job in jobs:
        try:
            client.text_generation(job, max_new_tokens=8)
            ok += 1
        except Exception:  # the seed's loop has no retry: a failure is a lost job
            pass
    return ok


def gathered(url: str, token: str, jobs: list[str]) -> int:
    from huggingface_hub import AsyncInferenceClient

    async def main() -> int:
        client = AsyncInferenceClient(model=url, token=token)
        answers = await asyncio.gather(
            *[client.text_generation(job, max_new_tokens=8) for job in jobs], return_exceptions=True
        )
        return sum(not isinstance(answer, BaseException) for answer in answers)

    return asyncio.run(main())


def peer(url: str, token: str, jobs: list[str], gate_size: int = CAPACITY) -> int:
    """The strongest huggingface_hub loop: a semaphore of ``gate_size``, retries with jittered backoff."""
    import random

    import httpx
    from huggingface_hub import AsyncInferenceClient
    from huggingface_hub.errors import HfHubHTTPError, OverloadedError

    async def main() -> int:
        client = AsyncInferenceClient(model=url, token=token)
        gate = asyncio.Semaphore(gate_size)

        async def one(job: str) -> bool:
            for attempt in range(9):  # like the operator's max_retries=8
                async with gate:
                    try:
                        await client.text_generation(job, max_new_tokens=8)
                        return True
                    except OverloadedError:  # 429, as huggingface_hub's text_generation raises it
                        pass
                    except HfHubHTTPError as exc:
                        if exc.response is None or exc.response.status_code not in (429, 503):
                            return False
                    except httpx.TransportError:
                        pass
                await asyncio.sleep(min(10.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0))
            return False

        answers = await asyncio.gather(*(one(job) for job in jobs))
        return sum(answers)

    return asyncio.run(main())


def bare_httpx(url: str, token: str, jobs: list[str], clients: int = 1) -> int:
    """The floor: httpx under a semaphore(32), the connections in ``clients`` pools taken in turn."""
    import httpx

    async def main() -> int:
        gate = asyncio.Semaphore(CAPACITY)
        each = CAPACITY // clients
        limits = httpx.Limits(max_connections=each, max_keepalive_connections=each)
        headers = {"authorization": f"Bearer {token}"}
        pools = [httpx.AsyncClient(headers=headers, limits=limits, timeout=60) for _ in range(clients)]
        turn = itertools.count()

        async def one(job: str) -> bool:
            async with gate:
                client = pools[next(turn) % clients]
                response = await client.post(url, json={"inputs": job, "parameters": {"max_new_tokens": 8}})
                return response.status_code == 200 and bool(response.json())

        try:
            return sum(await asyncio.gather(*(one(job) for job in jobs)))
        finally:
            for client in pools:
                await client.aclose()

    return asyncio.run(main())


def runner(url: str, token: str, jobs: list[str], max_concurrency: int | None) -> int:
    from airflow_provider_hfep.endpoints.transport import BearerAuth
    from airflow_provider_hfep.inference.batch import BatchSettings, batch_client, run_batch
    from airflow_provider_hfep.inference.tasks import get_task

    settings = BatchSettings() if max_concurrency is None else BatchSettings(max_concurrency=max_concurrency)
    results: dict[int, object] = {}

    async def main() -> None:
        async with batch_client(BearerAuth(token), settings.max_concurrency) as client:
            await run_batch(
                client=client,
                url=url,
                task=get_task("text-generation"),
                items=enumerate(jobs),
                parameters={"max_new_tokens": 8},
                on_result=lambda r: results.__setitem__(r.index, r),
                settings=settings,
            )

    asyncio.run(main())
    return sum(1 for r in results.values() if r.ok)


ROOT = Path(__file__).resolve().parents[1]

# The operator run directly, as a worker runs it. Its task instance is the integration tests' stand-in,
# which those tests keep up with what execute() needs (the try, the task instance's identity...).
RSS_PROBE = """
import json, os, resource, sys, time
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from tests.integration.batch_child import TaskInstanceStub
op = HuggingFaceEndpointInferenceOperator(task_id="rss", endpoint_name="batch", task="text-generation",
    input_path=sys.argv[1], output_path=sys.argv[2], max_concurrency=64, progress_interval=3600)
started = time.monotonic()
result = op.execute({"ti": TaskInstanceStub()})
print(json.dumps({"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "count": result["summary"]["count"], "failed": result["summary"]["failed"], "seconds": time.monotonic() - started}))
"""


def last_json_line(command: list[str], env: dict[str, str], what: str) -> Any:
    """Run ``command`` from the repository's root; the JSON on its last line, or its error and exit."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{what} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def peak_rss(items: int) -> dict:
    from airflow_provider_hfep.emulator import Emulator

    with tempfile.TemporaryDirectory() as scratch, Emulator(latency_ms=1, capacity=256) as cloud:
        cloud.seed_endpoint("batch")
        jobs, out = Path(scratch) / "jobs.jsonl", Path(scratch) / "results.jsonl"
        with jobs.open("w") as f:
            for i in range(items):
                f.write(json.dumps(f"file job {i}") + "\n")
        env = {**os.environ, "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection()}
        result = last_json_line(
            [sys.executable, "-c", RSS_PROBE, str(jobs), str(out)], env, f"peak RSS ({items} items)"
        )
        result["lines"] = sum(1 for _ in out.open())
        return result


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rss-items", type=int, default=100_000)
    parser.add_argument("--variant", choices=["a", "b", "d", "c", "c256", "f", "f4"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    parser.add_argument(
        "--quick", action="store_true", help="only what the last line needs: (c), (d), (f), (f'), no RSS step"
    )
    args = parser.parse_args()
    if args.smoke:
        args.jobs, args.rss_items = 32, 500
    if args.variant:  # one variant, in this fresh process: print (ok, seconds)
        jobs, token = prompts(args.jobs), os.environ["HFEP_BENCH_TOKEN"]
        run = {
            "a": lambda: sequential(args.url, token, jobs),
            "b": lambda: gathered(args.url, token, jobs),
            "d": lambda: peer(args.url, token, jobs),
            "c": lambda: runner(args.url, token, jobs, None),
            "c256": lambda: runner(args.url, token, jobs, 256),
            "f": lambda: bare_httpx(args.url, token, jobs),
            "f4": lambda: bare_httpx(args.url, token, jobs, clients=4),
        }[args.variant]
        started, cpu = time.monotonic(), time.process_time()
        ok = run()
        print(json.dumps([ok, time.monotonic() - started, time.process_time() - cpu]))
        return
    from airflow_provider_hfep.emulator import Emulator

    jobs = prompts(args.jobs)
    ideal = CAPACITY / (LATENCY_MS / 1000)
    rates: dict[str, float] = {}
    lost: dict[str, int] = {}
    labels = {
        "a": "(a) sequential InferenceClient",
        "b": "(b) AsyncInferenceClient + gather",
        "d": "(d) peer: semaphore(32) + retries",
        "c": "(c) run_batch, operator defaults",
        "c256": "(c') run_batch, max_concurrency=256",
        "f": "(f) floor: bare httpx + semaphore(32)",
        "f4": "(f') floor, 4 clients of 8 connections",
    }
    print(
        f"{args.jobs} text-generation jobs, emulator latency {LATENCY_MS} ms, capacity {CAPACITY}: ideal {ideal:.0f} results/s"
    )
    if args.quick:
        labels = {key: labels[key] for key in ("d", "c", "f", "f4")}
    for key, label in labels.items():
        # A fresh emulator and a fresh client process each: nothing left over from the variant before.
        with Emulator(latency_ms=LATENCY_MS, capacity=CAPACITY) as cloud:
            cloud.seed_endpoint("batch")
            command = [
                sys.executable,
                __file__,
                "--variant",
                key,
                "--url",
                cloud.endpoint_url("batch"),
                "--jobs",
                str(args.jobs),
            ]
            env = {**os.environ, "HFEP_BENCH_TOKEN": cloud.token}
            emulator_cpu = process_cpu(cloud.pid)
            ok, seconds, client_cpu = last_json_line(command, env, label)
            emulator_cpu = process_cpu(cloud.pid) - emulator_cpu
            sent = cloud.requests("inference")
            overloads = sum(1 for r in sent if r["status"] == 429)
        rates[label], lost[label] = ok / seconds, args.jobs - ok
        print(
            f"  {label:<38} {ok:5d} ok in {seconds:7.2f} s = {ok / seconds:6.1f} results/s  429s={overloads:5d}  "
            f"lost={args.jobs - ok}  client CPU {1000 * client_cpu / max(1, len(sent)):.2f} ms/request, "
            f"emulator CPU {emulator_cpu:.1f} s"
        )
    for items in (
        [] if args.quick else sorted({10_000, args.rss_items}) if not args.smoke else [args.rss_items]
    ):
        result = peak_rss(items)
        print(
            f"  file-to-file {items:>7} items: peak RSS {result['peak_rss_mib']:.0f} MiB, {result['lines']} lines, "
            f"{result['failed']} failed, {result['seconds']:.0f} s"
        )
    floor = max(rates[labels["f"]], rates[labels["f4"]])
    print(
        f"  the floor reaches {floor / ideal:.2f} of the ideal on this machine; this runner {rates[labels['c']] / floor:.2f} of the floor"
    )
    ours, best_peer = rates[labels["c"]], rates[labels["d"]]
    print(
        f"ratio_vs_ideal={ours / ideal:.2f} ratio_vs_peer={ours / best_peer:.2f} "
        f"ratio_vs_floor={ours / floor:.2f} lost={lost[labels['c']]}"
    )


if __name__ == "__main__":
    main()
