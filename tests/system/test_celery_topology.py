"""hf_nightly_batch on Airflow's production topology: the CeleryExecutor with Redis as broker, PostgreSQL
as metadata database and result backend, an api-server, a scheduler, a dag-processor, two triggerers and
two Celery workers, each a process of its own; the jobs and results on S3 (moto), the endpoint on the
emulator. Needs redis-server and PostgreSQL's binaries (``scripts/services.sh``). Every process is
stopped after."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_hfep.emulator import Emulator

from tests.helpers import wait_until
from tests.moto_server import MotoS3
from tests.system.celery_stack import CeleryAirflow, Postgres, Redis
from tests.system.test_nightly_standalone import DAG_ID, SENSOR, TGI

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.system, pytest.mark.timeout(600)]

EXAMPLES = Path(__file__).parents[2] / "example_dags"
S3_CONN = "nightly_s3"
PROMPTS, CHUNK = 200, 40


@dataclass
class Topology:
    cloud: Emulator
    s3: MotoS3
    airflow: CeleryAirflow
    started_seconds: float


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    """The emulator, moto's S3, Redis, PostgreSQL and the Celery stack, for the module's tests."""
    tmp = tmp_path_factory.mktemp("celery")
    dags = tmp_path_factory.mktemp("dags")
    shutil.copytree(EXAMPLES, dags, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    began = time.monotonic()
    with (
        Emulator(deploy_seconds=8, latency_ms=20) as cloud,
        MotoS3(tmp) as s3,
        Redis(tmp) as redis,
        Postgres(tmp) as postgres,
    ):
        env = {
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            f"AIRFLOW_CONN_{S3_CONN.upper()}": s3.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "1",
            "HFEP_EXAMPLE_RETRY_SECONDS": "3",
            # A worker lost with its task (CeleryAirflow.kill_worker): the scheduler fails the task instance,
            # to be retried, after this long without a heartbeat (default 300 s; Celery's own redelivery of
            # the unacknowledged message comes after Airflow's visibility_timeout, 24 h).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }
        with CeleryAirflow(tmp / "home", dags, env, redis=redis, postgres=postgres) as airflow:
            started = time.monotonic() - began
            print(f"\n[celery] stack up in {started:.1f} s: {airflow.home}")
            yield Topology(cloud, s3, airflow, started)


@dataclass
class Watch:
    """What polling the REST API saw of a run."""

    state: str = "queued"
    sensor_states: set[str] = field(default_factory=set)
    deferred: list[dict[str, Any]] = field(default_factory=list)  # the sensor's instance while deferred
    seconds: float = 0.0
    peak_memory_mib: float = 0.0


def watch(airflow: CeleryAirflow, run_id: str, limit: float = 300) -> Watch:
    """Poll the run every 0.25 s until it ends: the sensor's states, and the stack's memory."""
    seen = Watch()
    began = time.monotonic()
    while time.monotonic() - began < limit:
        seen.peak_memory_mib = max(seen.peak_memory_mib, airflow.memory_mib())
        for ti in airflow.task_instances(DAG_ID, run_id):
            if ti["task_id"] == SENSOR:
                seen.sensor_states.add(ti["state"] or "none")
                if ti["state"] == "deferred":
                    seen.deferred.append(ti)
        seen.state = airflow.run_state(DAG_ID, run_id)
        if seen.state in ("success", "failed"):
            seen.seconds = time.monotonic() - began
            return seen
        time.sleep(0.25)
    raise AssertionError(f"{DAG_ID} did not end in {limit} s: {airflow.task_states(DAG_ID, run_id)}")


def start_night(topology: Topology, count: int, chunk: int) -> tuple[str, list[str]]:
    """A paused endpoint, the night's prompts on S3; trigger hf_nightly_batch with results to S3."""
    cloud, s3 = topology.cloud, topology.s3
    cloud.reset()
    s3.reset()
    cloud.seed_endpoint("batch-endpoint", state="paused", model=TGI)
    prompts = [f"Night job {i}: say something kind." for i in range(count)]
    s3.client().put_object(
        Bucket=s3.bucket, Key="jobs/tonight.jsonl", Body="\n".join(json.dumps(p) for p in prompts).encode()
    )
    run_id = topology.airflow.trigger(
        DAG_ID,
        conf={
            "jobs_path": f"s3://{S3_CONN}@{s3.bucket}/jobs/tonight.jsonl",
            "chunk_size": chunk,
            "output_dir": f"s3://{S3_CONN}@{s3.bucket}/results",
        },
    )
    return run_id, prompts


def test_nightly_batch_on_celery_workers(topology):
    cloud, s3, airflow = topology.cloud, topology.s3, topology.airflow
    run_id, _ = start_night(topology, PROMPTS, CHUNK)
    seen = watch(airflow, run_id)
    print(
        f"\n[celery] {DAG_ID} {seen.state} in {seen.seconds:.1f} s (stack up in {topology.started_seconds:.1f} s),"
        f" peak memory (PSS) of the Airflow processes {seen.peak_memory_mib:.0f} MiB"
    )
    instances = airflow.task_instances(DAG_ID, run_id)
    assert seen.state == "success", {(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances}
    assert {ti["state"] for ti in instances} == {"success"}

    # the chunks ran on both workers (each reports its own host name)
    chunks = [ti for ti in instances if ti["task_id"] == "endpoint_window.infer"]
    assert sorted(ti["map_index"] for ti in chunks) == list(range(PROMPTS // CHUNK))
    hosts = {ti["map_index"]: ti["hostname"] for ti in chunks}
    print(f"[celery] chunks by worker: {hosts}")
    assert set(hosts.values()) == set(airflow.workers), hosts

    # the sensor waited in a triggerer, not on a worker: deferred, with a trigger, then done there
    assert "deferred" in seen.sensor_states, seen.sensor_states
    assert any(ti.get("trigger") for ti in seen.deferred), seen.deferred[:1]
    trigger_logs = "".join(
        p.read_text(errors="replace")
        for p in (airflow.home / "logs").rglob("*")
        if p.is_file() and SENSOR in str(p)
    )
    assert "Endpoint batch-endpoint is running" in trigger_logs

    # the results on S3: one file a chunk, every index of the chunk once, the pieces removed
    prefix = f"results/{run_id.replace(':', '-')}/"
    expected = [f"{prefix}chunk-{n}.jsonl" for n in range(PROMPTS // CHUNK)]
    keys = s3.keys("results/")
    assert set(expected) <= set(keys), keys
    assert not [key for key in keys if "/part-" in key], keys  # only each chunk's manifest stays beside it
    for key in expected:
        lines = [json.loads(line) for line in s3.read(key).decode().splitlines() if line.strip()]
        assert sorted(line["index"] for line in lines) == list(range(CHUNK)), key
        assert all("output" in line for line in lines), key
    assert s3.open_uploads() == []

    # the window closed: the endpoint is paused again
    assert cloud.state("batch-endpoint") == "paused"


def test_a_lost_worker_mid_chunk_is_retried_with_only_the_missing_inputs(topology):
    """The worker running a chunk dies with its machine (SIGKILL to it and its task), half-way through the
    chunk: the scheduler fails the task instance after its heartbeat timeout, and the retry, on whichever
    worker takes it, sends only the inputs without a committed result (plus at most the lost open piece)."""
    cloud, s3, airflow = topology.cloud, topology.s3, topology.airflow
    chunk = 6000
    run_id, prompts = start_night(topology, 2 * chunk, chunk)
    result = f"results/{run_id.replace(':', '-')}/chunk-0.jsonl"

    def committed() -> dict[int, str]:
        found: dict[int, str] = {}
        for key in s3.keys(f"{result}.parts/part-"):
            for line in s3.read(key).decode().splitlines():
                record = json.loads(line)
                found[record["index"]] = record["output"]
        return found

    def chunk_zero() -> dict[str, Any] | None:
        return next(
            (
                ti
                for ti in airflow.task_instances(DAG_ID, run_id)
                if ti["task_id"] == "endpoint_window.infer" and ti["map_index"] == 0
            ),
            None,
        )

    wait_until(lambda: len(committed()) >= 1000, "1,000 results of chunk 0 committed", limit=240, every=0.1)
    first_try = chunk_zero()
    assert first_try is not None
    assert first_try["state"] == "running", first_try
    lost = first_try["hostname"]
    airflow.kill_worker(lost)
    kept = committed()  # nothing of the killed try writes any more
    sent_before = cloud.requests("inference")
    last_request = sent_before[-1]["id"]
    mine = set(prompts[:chunk])
    answered = {
        r["json"]["inputs"] for r in sent_before if r["status"] == 200 and r["json"]["inputs"] in mine
    }
    airflow.start_worker(lost)  # the machine comes back (or another takes its place)

    seen = watch(airflow, run_id, limit=420)
    instances = airflow.task_instances(DAG_ID, run_id)
    assert seen.state == "success", {(ti["task_id"], ti["map_index"]): ti["state"] for ti in instances}
    retried = chunk_zero()
    assert retried is not None
    assert retried["try_number"] == 2, retried
    requests = cloud.requests("inference")
    resent = [
        r["json"]["inputs"]
        for r in requests
        if r["id"] > last_request and r["method"] == "POST" and r["json"] and r["json"]["inputs"] in mine
    ]
    missing = {prompts[i] for i in range(chunk) if i not in kept}
    paid_twice = len(answered & set(resent))
    print(
        f"\n[celery kill] chunk of {chunk}: {len(answered)} answered at the kill of worker {lost}, "
        f"{len(kept)} committed; the retry ran on {retried['hostname']} and sent {len(resent)}, "
        f"{paid_twice} of them answered before"
    )
    assert sorted(resent) == sorted(missing)  # exactly the inputs without a committed result, once each
    assert paid_twice <= 500 + 16  # the open piece, and the answers on their way (max_concurrency 16)
    lines = [json.loads(line) for line in s3.read(result).decode().splitlines()]
    assert sorted(line["index"] for line in lines) == list(range(chunk))
    assert all(line["output"] == kept[line["index"]] for line in lines if line["index"] in kept)
    assert not [key for key in s3.keys("results/") if "/part-" in key]
    assert s3.open_uploads() == []
    assert cloud.state("batch-endpoint") == "paused"
