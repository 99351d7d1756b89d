"""Results on object storage: what a hard kill costs, and what a large batch costs, on S3 beside the local disk.

S3 is moto's standalone server on 127.0.0.1, reached through an Airflow ``aws`` connection (the Amazon
provider's s3fs object storage), as a user's stack reaches S3. Each figure comes from a fresh process.

(1) A kill: 3,000 text-generation inputs (emulator at 20 ms a request, 16 in flight, the operator's
    default pieces of 500 results or 10 s), the task's process SIGKILLed once half the inputs were
    answered, then the retry. Printed per store: answered before the kill, results committed at the
    kill, requests the retry sent, answered inputs paid for twice.
(2) A large batch: 100,000 inputs file to file (or the sizes given, to see that memory stays flat);
    wall time and the task process's peak RSS.

    .venv/bin/python benchmarks/results_store.py [--kill-inputs 3000] [--large-inputs 100000 ...] [--repeat 1] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_hfep.emulator import Emulator  # noqa: E402

from tests.moto_server import MotoS3  # noqa: E402

CONN_ID = "bench_s3"

# The task's process: the operator run directly (as a worker runs it), its wall time and peak RSS printed.
CHILD = """
import json, resource, sys, time
from tests.integration.batch_child import run
started = time.monotonic()
result, _ = run(**json.loads(sys.argv[1]))
print(json.dumps({"wall_s": time.monotonic() - started, "summary": result["summary"],
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def uri(store: str, s3: MotoS3, folder: Path, name: str) -> str:
    return f"s3://{CONN_ID}@{s3.bucket}/{name}" if store == "s3" else str(folder / name)


def put(store: str, s3: MotoS3, folder: Path, name: str, text: str) -> None:
    if store == "s3":
        s3.client().put_object(Bucket=s3.bucket, Key=name, Body=text.encode())
    else:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def committed(store: str, s3: MotoS3, folder: Path, name: str) -> int:
    """Results in the committed pieces."""
    if store == "s3":
        keys = [key for key in s3.keys(f"{name}.parts/") if "/part-" in key]
        return sum(len(s3.read(key).splitlines()) for key in keys)
    return sum(len(p.read_text().splitlines()) for p in (folder / f"{name}.parts").glob("part-*.jsonl"))


def jobs_text(count: int) -> str:
    return "".join(json.dumps(f"night job {i}") + "\n" for i in range(count))


def batch(store: str, s3: MotoS3, folder: Path, cloud: Emulator, total: int, **extra) -> tuple[dict, dict]:
    """A fresh bucket and folder, the jobs in place: the task process's environment and arguments."""
    s3.reset()
    cloud.seed_endpoint("gen")
    put(store, s3, folder, "in/jobs.jsonl", jobs_text(total))
    env = {**os.environ, "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection()}
    arguments = {
        "task": "text-generation",
        "input_path": uri(store, s3, folder, "in/jobs.jsonl"),
        "output_path": uri(store, s3, folder, "out/results.jsonl"),
        **extra,
    }
    return env, arguments


def run_child(arguments: dict, env: dict[str, str]) -> dict:
    """The task's process, to its end: the figures it printed, or its error and exit."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(arguments)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise SystemExit(f"the task's process failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def kill_and_retry(store: str, s3: MotoS3, total: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="hfep-bench-") as scratch, Emulator(latency_ms=20) as cloud:
        folder = Path(scratch)
        env, arguments = batch(store, s3, folder, cloud, total, max_concurrency=16)
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(arguments)],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
        )
        while cloud.billing("gen")["requests"] < total // 2:
            if child.poll() is not None:
                raise RuntimeError("the batch ended before it was killed")
            time.sleep(0.01)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        answered = {r["json"]["inputs"] for r in cloud.requests("inference") if r["status"] == 200}
        kept = committed(store, s3, folder, "out/results.jsonl")
        cloud.clear_requests()
        summary = run_child({**arguments, "try_number": 2}, env)["summary"]
        resent = [r["json"]["inputs"] for r in cloud.requests("inference")]
    return {
        "answered": len(answered),
        "committed": kept,
        "retry_sent": len(resent),
        "paid_twice": len(answered & set(resent)),
        "reused": summary["reused"],
        "open_uploads": len(s3.open_uploads()),
    }


def large(store: str, s3: MotoS3, total: int) -> dict:
    with (
        tempfile.TemporaryDirectory(prefix="hfep-bench-") as scratch,
        Emulator(latency_ms=0, capacity=256) as cloud,
    ):
        folder = Path(scratch)
        env, arguments = batch(store, s3, folder, cloud, total, parameters={"max_new_tokens": 8})
        figures = run_child(arguments, env)
    return {
        "wall_s": round(figures["wall_s"], 1),
        "peak_rss_mib": round(figures["peak_rss_mib"]),
        "succeeded": figures["summary"]["succeeded"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--kill-inputs", type=int, default=3000)
    parser.add_argument("--large-inputs", type=int, nargs="+", default=[100_000])
    parser.add_argument("--repeat", type=int, default=1, help="runs of the kill")
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    options = parser.parse_args()
    if options.smoke:
        options.kill_inputs, options.large_inputs, options.repeat = 1500, [1000], 1
    with (
        tempfile.TemporaryDirectory(prefix="hfep-bench-home-") as home,
        tempfile.TemporaryDirectory(prefix="hfep-moto-") as moto,
        MotoS3(Path(moto)) as s3,
    ):
        os.environ.setdefault("AIRFLOW_HOME", home)
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = s3.airflow_connection()
        for _ in range(options.repeat):
            for store in ("local", "s3"):
                print(
                    f"kill {options.kill_inputs} half-way [{store}]: {kill_and_retry(store, s3, options.kill_inputs)}"
                )
        for count in options.large_inputs:
            for store in ("local", "s3"):
                print(f"{count} inputs [{store}]: {large(store, s3, count)}", flush=True)


if __name__ == "__main__":
    main()
