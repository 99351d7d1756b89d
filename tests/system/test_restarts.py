"""Real processes killed mid-work on a real `airflow standalone`: a task's worker process in the middle of
a batch (its retry sends only the jobs missing from output_path), and the triggerer while sensors wait
(another triggerer takes the waits over; their deadline does not move)."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.system

NIGHTLY = "hf_nightly_batch"
INFER = "endpoint_window.infer"


def results(path: Path) -> dict[int, str]:
    """index -> output in a results file and its committed pieces (a torn last line is ignored, as the operator does)."""
    found = {}
    files = [path, *sorted(path.parent.glob(f"{path.name}.parts/part-*.jsonl"))]
    for line in (line for f in files if f.exists() for line in f.read_text().splitlines()):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.setdefault(record["index"], record["output"])
        assert found[record["index"]] == record["output"]
    return found


def test_a_worker_killed_mid_batch_is_retried_with_only_the_missing_jobs(stack, tmp_path):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint("batch-endpoint", state="paused")
    jobs = [f"job {i}: classify ticket {i * 31 % 997}" for i in range(6000)]
    (tmp_path / "jobs.jsonl").write_text("".join(json.dumps(j) + "\n" for j in jobs))
    conf = {
        "jobs_path": str(tmp_path / "jobs.jsonl"),
        "output_dir": str(tmp_path / "out"),
        "chunk_size": 6000,
    }
    run_id = airflow.trigger(NIGHTLY, conf=conf)
    output = tmp_path / "out" / run_id.replace(":", "-") / "chunk-0.jsonl"

    def running_infer():
        return next(
            (
                ti
                for ti in airflow.task_instances(NIGHTLY, run_id)
                if ti["task_id"] == INFER and ti["state"] == "running"
            ),
            None,
        )

    first_try = wait_until(running_infer, "the inference task to run", limit=120, every=0.2)
    wait_until(lambda: len(results(output)) >= 600, "600 results committed", limit=60)
    killed = airflow.pids(f"airflow worker -- {first_try['id']}", any_group=True)
    assert killed, "the task's process was not found"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would: no cleanup, no goodbye
    wait_until(
        lambda: not airflow.pids(f"airflow worker -- {first_try['id']}", any_group=True),
        "the process to die",
        limit=10,
    )
    kept = results(output)  # the retry waits 3 s (retry_delay): nothing writes the file meanwhile
    last_request = cloud.requests("inference")[-1]["id"]
    assert 600 <= len(kept) < len(jobs)

    wait_until(
        lambda: airflow.run_state(NIGHTLY, run_id) in ("success", "failed"),
        "the run to end",
        limit=240,
        every=0.5,
    )
    assert airflow.run_state(NIGHTLY, run_id) == "success", airflow.task_states(NIGHTLY, run_id)
    infer = next(ti for ti in airflow.task_instances(NIGHTLY, run_id) if ti["task_id"] == INFER)
    assert infer["try_number"] == 2  # the first try was killed, the retry finished

    final = results(output)
    lines = [line for line in output.read_text().splitlines() if line.strip()]
    assert sorted(final) == list(range(len(jobs)))
    assert len([line for line in lines if _complete(line)]) == len(jobs)  # each job exactly once
    requests = cloud.requests("inference")
    jobs_sent = [r for r in requests if r["method"] == "POST" and r["json"]]  # not health or model reads
    answered = {r["json"]["inputs"] for r in jobs_sent if r["id"] <= last_request and r["status"] == 200}
    resent = [r["json"]["inputs"] for r in jobs_sent if r["id"] > last_request]
    missing = {jobs[i] for i in range(len(jobs)) if i not in kept}
    assert sorted(resent) == sorted(missing)  # the retry sent exactly the jobs with no committed result, once
    assert all(final[i] == kept[i] for i in kept)  # what was kept was not recomputed
    paid_twice = len(answered & set(resent))
    # lost at the kill: the open piece (500 results at most) and the answers on their way (16 in flight)
    assert paid_twice <= 500 + 16
    assert not list(output.parent.glob("chunk-0.jsonl.parts/part-*"))  # the pieces were joined and removed
    print(
        f"\n[worker kill] {len(answered)} of {len(jobs)} answered at the kill, {len(kept)} committed; "
        f"the retry sent {len(resent)} requests, {paid_twice} of them answered before"
    )


def _complete(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _seconds(ti: dict, start: str = "start_date", end: str = "end_date") -> float:
    return (datetime.fromisoformat(ti[end]) - datetime.fromisoformat(ti[start])).total_seconds()


def test_a_killed_triggerer_hands_its_waits_over_and_deadlines_hold(stack):
    cloud, airflow, _ = stack
    cloud.reset()
    cloud.seed_endpoint(
        "restart-ok", state="initializing"
    )  # seeded states stay put until the test moves them
    cloud.seed_endpoint("restart-stuck", state="initializing")
    dag = "hfep_triggerer_restart"
    run_id = airflow.trigger(dag)
    wait_until(
        lambda: set(airflow.task_states(dag, run_id).values()) == {"deferred"},
        "both sensors to defer",
        limit=120,
        every=0.5,
    )
    # the triggerer has both waits in hand: it looked at each endpoint (the worker looked once before)
    looked = lambda name: len([r for r in cloud.requests("management") if r["path"].endswith(f"/{name}")])
    wait_until(
        lambda: looked("restart-ok") >= 2 and looked("restart-stuck") >= 2, "the triggerer's looks", limit=60
    )
    deferred_at = time.monotonic()
    old = airflow.pids("airflow triggerer")
    assert old, "the standalone's triggerer was not found"
    doomed = airflow.with_descendants(old)  # its trigger runner too, or it polls on for a moment
    killed_at = time.time()  # the emulator stamps its request log with the same clock
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(airflow.alive(pid) for pid in doomed), "the triggerer to die", limit=10)
    airflow.start_component("triggerer")
    cloud.set_state("restart-ok", "running")  # it comes up while no triggerer watches it

    wait_until(
        lambda: airflow.task_states(dag, run_id)["comes_up"] in ("success", "failed"),
        "comes_up to end",
        limit=120,
        every=0.5,
    )
    wait_until(
        lambda: airflow.task_states(dag, run_id)["never_up"] in ("success", "failed"),
        "never_up to end",
        limit=120,
        every=0.5,
    )
    took_over = time.monotonic() - deferred_at
    instances = {ti["task_id"]: ti for ti in airflow.task_instances(dag, run_id)}
    assert instances["comes_up"]["state"] == "success"
    assert instances["never_up"]["state"] == "failed"
    # The wait's deadline is absolute (in the trigger's kwargs): 45 s from the sensor's start, not 45 s
    # from the new triggerer's pick-up, which came at least 10 s (the health threshold) after the kill.
    waited = _seconds(instances["never_up"])
    assert waited >= 45, waited
    looks = [r["time"] for r in cloud.requests("management") if r["path"].endswith("/restart-stuck")]
    picked_up = min(t for t in looks if t > killed_at)  # the new triggerer's first look
    assert max(looks) < picked_up + 45  # it gave up at the old deadline, not at a fresh one
    assert airflow.extra[-1].poll() is None
    assert not set(old) & set(airflow.pids("airflow triggerer"))
    print(
        f"\n[triggerer kill] killed {len(old)} process(es); waits ended {took_over:.0f} s after they deferred; never_up failed after {waited:.1f} s (timeout 45)"
    )
