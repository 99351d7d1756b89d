"""The nightly example DAG, 1,000 jobs, through a cloud that fails one inference call in five and one
management call in ten: every job ends with exactly one result, the endpoint ends paused, and the
retries stay bounded (counted in the emulator's request log)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from airflow_provider_hfep.emulator import Emulator, runners

from tests.integration.test_example_dags import dags_test

pytestmark = pytest.mark.integration

INFERENCE_KINDS = ("429", "503", "502", "reset", "timeout")
MANAGEMENT_KINDS = ("429", "500", "503")
JOBS = 1000
MAX_RETRIES = 8  # the inference operator's default


def evenly(scope: str, kinds: tuple[str, ...], total: float) -> list[dict]:
    """Fault rules giving ``total`` in all, split evenly between ``kinds``.

    The emulator applies the first rule whose dice fire, so each rule's rate is conditional on the
    rules before it not having fired.
    """
    share, rules, left = total / len(kinds), [], 1.0
    for kind in kinds:
        rules.append({"scope": scope, "kind": kind, "rate": share / left})
        left -= share
    return rules


@pytest.fixture(scope="module")
def cloud():
    """An emulator of its own: a 3 s deployment, so the window's sensor looks a dozen times meanwhile."""
    with Emulator(deploy_seconds=3, latency_ms=5) as emulator:
        yield emulator


def test_nightly_batch_of_1000_jobs_under_faults(cloud, tmp_path, capsys):
    prompts = [f"night job {i}: summarise ticket #{i * 7919 % 10007}" for i in range(JOBS)]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text("".join(json.dumps(p) + "\n" for p in prompts))
    out = tmp_path / "out"
    cloud.seed_endpoint("batch-endpoint", state="paused")
    cloud.set_faults(
        evenly("inference", INFERENCE_KINDS, 0.20) + evenly("management", MANAGEMENT_KINDS, 0.10), seed=2026
    )

    conf = {"jobs_path": str(jobs), "output_dir": str(out), "chunk_size": 250}
    output = dags_test(
        cloud, "hf_nightly_batch", "--conf", json.dumps(conf), env={"HFEP_EXAMPLE_REQUEST_TIMEOUT": "2"}
    )
    log = cloud.requests()
    cloud.clear_faults()

    assert "state=success" in output
    assert f"nightly batch: {JOBS} results, 0 failed, in 4 files" in output
    records = [
        (f.name, json.loads(line))
        for f in sorted(out.rglob("chunk-*.jsonl"))
        for line in f.read_text().splitlines()
    ]
    assert len(records) == JOBS
    assert len({(name, r["index"]) for name, r in records}) == JOBS  # no duplicates
    chunk_of = {f"chunk-{c}.jsonl": c for c in range(4)}
    answers = {prompts[chunk_of[name] * 250 + r["index"]]: r["output"] for name, r in records}
    assert answers == {p: runners.generate_text(p, 24) for p in prompts}  # each job's own answer

    assert cloud.state("batch-endpoint") == "paused"

    inference = [r for r in log if r["scope"] == "inference"]
    management = [r for r in log if r["scope"] == "management"]
    # Billed: every request that reached the model (the injected faults stopped the others before it),
    # and no more time than from the resume that succeeded to the pause that succeeded.
    meter = cloud.billing("batch-endpoint")
    assert meter["requests"] == len([r for r in inference if not r["fault"]])
    resumed = next(r for r in management if r["path"].endswith("/resume") and r["status"] == 200)
    paused = [r for r in management if r["path"].endswith("/pause") and r["status"] == 200][-1]
    assert 0 < meter["billable_seconds"] < paused["time"] - resumed["time"]
    assert meter["replica_seconds"] == meter["billable_seconds"]  # one replica
    attempts = Counter(r["json"]["inputs"] for r in inference)
    injected = Counter(r["fault"] for r in inference if r["fault"])
    assert set(attempts) == set(prompts)  # nothing sent that was not a job
    # bounded per job: every failed attempt but a 429 (backpressure while the batch progresses) counts
    counted = Counter(r["json"]["inputs"] for r in inference if r["fault"] and r["fault"] != "429")
    assert max(counted.values()) <= MAX_RETRIES
    assert len(inference) - JOBS == sum(injected.values())  # exactly one resend per fault, none wasted
    assert set(injected) == set(INFERENCE_KINDS)
    assert 0.15 < sum(injected.values()) / len(inference) < 0.25
    management_faults = Counter(r["fault"] for r in management if r["fault"])
    assert management_faults
    assert all(r["status"] < 300 for r in management if not r["fault"])
    assert _longest_fault_streak(management) <= 4  # the hook's default max_retries
    with capsys.disabled():
        print(
            f"\n[faults] {JOBS} jobs: {len(inference)} inference requests ({dict(injected)} injected), "
            f"max {max(attempts.values())} attempts for one job; {len(management)} management requests "
            f"({dict(management_faults)} injected)"
        )


def _longest_fault_streak(requests: list[dict]) -> int:
    longest = streak = 0
    for request in requests:
        streak = streak + 1 if request["fault"] else 0
        longest = max(longest, streak)
    return longest
