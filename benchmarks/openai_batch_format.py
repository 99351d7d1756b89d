"""OpenAI Batch files beside the provider's own format: the same chat jobs, file to file, through the operator.

(a) the provider's format: one ``[{"role": "user", "content": ...}]`` job a line, ``task="chat-completion"``,
    results ``{"index", "output"}``;
(b) the OpenAI Batch format: one ``{"custom_id", "method", "url": "/v1/chat/completions", "body"}`` line
    each, no task (found from the lines), results as OpenAI batch output lines (the whole answer body).

Both send the same requests to the same route of one TGI endpoint of the emulator (no latency, capacity
256), from a fresh process each (the operator run as a worker runs it), alternating (a) and (b)
``--repeat`` times. Printed: wall time, the task process's CPU time and peak RSS, each run and the
medians, and the last line ``wall_ratio=X cpu_ratio=Y rss_ratio=Z`` (b over a; the goal is within
5 %: at most 1.05). The emulator shares the machine's cores with the task: on a loaded machine the
wall time follows the load, and the task's CPU time says what the format itself costs.

    .venv/bin/python benchmarks/openai_batch_format.py [--jobs 10000] [--repeat 3] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_hfep.emulator import Emulator  # noqa: E402

# The task's process: the operator run directly (as a worker runs it), its wall time and peak RSS printed.
CHILD = """
import json, resource, sys, time
from tests.integration.batch_child import run
started = time.monotonic()
result, _ = run(**json.loads(sys.argv[1]))
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": time.monotonic() - started, "summary": result["summary"],
                  "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}))
"""
MAX_TOKENS = 8


def question(index: int) -> str:
    return f"Extract the city from nightly record {index}"


def provider_jobs(count: int) -> str:
    return "".join(json.dumps([{"role": "user", "content": question(i)}]) + "\n" for i in range(count))


def openai_lines(count: int) -> str:
    return "".join(
        json.dumps(
            {
                "custom_id": f"record-{i}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": "gpt-4o-mini",
                    "messages": [{"role": "user", "content": question(i)}],
                    "max_tokens": MAX_TOKENS,
                },
            }
        )
        + "\n"
        for i in range(count)
    )


def one_run(cloud: Emulator, folder: Path, kind: str, count: int, attempt: int) -> dict:
    source = folder / f"{kind}.jsonl"
    out = folder / f"{kind}-results-{attempt}.jsonl"
    arguments: dict = {"endpoint_name": "gen", "input_path": str(source), "output_path": str(out)}
    if kind == "provider":
        arguments.update(task="chat-completion", parameters={"max_tokens": MAX_TOKENS})
    env = {**os.environ, "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection()}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    lines = out.read_text().splitlines()
    if len(lines) != count or figures["summary"]["failed"]:
        raise RuntimeError(f"{kind}: {len(lines)} results for {count} jobs, {figures['summary']}")
    return {
        "wall_s": figures["wall_s"],
        "cpu_s": figures["cpu_s"],
        "peak_rss_mib": figures["peak_rss_mib"],
        "bytes": out.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a tiny fast run (200 jobs, once)")
    args = parser.parse_args()
    count, repeat = (200, 1) if args.smoke else (args.jobs, args.repeat)
    folder = Path(tempfile.mkdtemp(prefix="hfep-bench-openai-"))
    (folder / "provider.jsonl").write_text(provider_jobs(count))
    (folder / "openai.jsonl").write_text(openai_lines(count))
    runs: dict[str, list[dict]] = {"provider": [], "openai": []}
    print(f"{count} chat jobs file to file, TGI endpoint on the emulator (no latency, capacity 256)")
    with Emulator(latency_ms=0, capacity=256) as cloud:
        cloud.seed_endpoint("gen")
        for attempt in range(repeat):
            for kind in ("provider", "openai"):  # alternating: a drift of the machine touches both
                figures = one_run(cloud, folder, kind, count, attempt)
                runs[kind].append(figures)
                print(
                    f"  {kind:>8} run {attempt + 1}: {figures['wall_s']:.2f} s "
                    f"(task process CPU {figures['cpu_s']:.2f} s), peak RSS "
                    f"{figures['peak_rss_mib']:.0f} MiB, output {figures['bytes'] / 1e6:.1f} MB"
                )
    medians = {
        kind: {
            key: statistics.median(run[key] for run in found) for key in ("wall_s", "cpu_s", "peak_rss_mib")
        }
        for kind, found in runs.items()
    }
    for kind, label in (("provider", "(a) provider's format"), ("openai", "(b) OpenAI Batch format")):
        print(
            f"{label:<26} median wall {medians[kind]['wall_s']:.2f} s, "
            f"task process CPU {medians[kind]['cpu_s']:.2f} s, "
            f"median peak RSS {medians[kind]['peak_rss_mib']:.0f} MiB"
        )
    wall = medians["openai"]["wall_s"] / medians["provider"]["wall_s"]
    cpu = medians["openai"]["cpu_s"] / medians["provider"]["cpu_s"]
    rss = medians["openai"]["peak_rss_mib"] / medians["provider"]["peak_rss_mib"]
    print(f"wall_ratio={wall:.3f} cpu_ratio={cpu:.3f} rss_ratio={rss:.3f}")


if __name__ == "__main__":
    main()
