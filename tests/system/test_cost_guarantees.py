"""
The night's bill has a ceiling, whatever dies: on a real `airflow standalone` of its own (every Airflow
process of it is killed in one test), against an emulator whose minute lasts a second.

- Every Airflow process SIGKILLed mid-batch: the safety net the window armed (``idle_stop_minutes``,
  15 emulated minutes) makes the service scale the endpoint to zero 15 s after the last request, with
  no client; Airflow restarted, the killed task's retry sends only the missing inputs, and the next
  night completes.
- ``max_runtime``, ``max_cost`` and ``stop_at`` fire mid-batch: the endpoint is closed within one
  ``poke_interval`` of the cap, no inference request reaches it after, what was answered is committed,
  and the cost report names the cap.
- A triggerer killed during the watch: the next one keeps the spend (counted from the replicas) and
  still fires.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_hfep.emulator import Emulator

from tests.helpers import wait_until
from tests.system.conftest import EXAMPLES, SYSTEM_DAGS
from tests.system.dags.hfep_cost_cases import CAP_SECONDS, POKE_SECONDS
from tests.system.standalone import Standalone
from tests.system.test_restarts import results

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.system

MINUTE = 1.0  # seconds an emulated minute lasts here
NIGHTLY = "hf_nightly_batch"


class Stack:
    """The emulator and one `airflow standalone`, which a test may kill whole and start again."""

    def __init__(self, cloud: Emulator, home: Path, dags: Path, env: dict[str, str]) -> None:
        self.cloud, self.home, self.dags, self.env = cloud, home, dags, env
        self.airflow = Standalone(home, dags, env).start()

    def _processes(self) -> list[int]:
        mine = f"AIRFLOW_HOME={self.home}".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                try:
                    if mine in (proc / "environ").read_bytes().split(b"\0") and Standalone.alive(
                        int(proc.name)
                    ):
                        found.append(int(proc.name))
                except OSError:
                    continue
        return found

    def kill_everything(self) -> set[int]:
        """SIGKILL every process of this Airflow (its components and task processes), as a dead host would.

        Again and again until none is left: a process may fork while the others die.
        """
        killed: set[int] = set()
        roots = [p.pid for p in [self.airflow.process, *self.airflow.extra] if p is not None]
        # The whole tree first (a task's process lives in a session of its own, with an environment of its
        # own), gathered before anything dies: a killed parent's children would be handed to init.
        while doomed := [
            pid
            for pid in {*self._processes(), *Standalone.with_descendants(roots + sorted(killed))}
            if Standalone.alive(pid)
        ]:
            for pid in doomed:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            killed.update(doomed)
            wait_until(
                lambda d=doomed: not any(Standalone.alive(pid) for pid in d), "the processes to die", limit=30
            )
        self.airflow.process = None  # nothing of it is left to stop
        self.airflow.extra.clear()
        return killed

    def restart(self) -> Standalone:
        self.airflow = Standalone(self.home, self.dags, self.env).start()
        return self.airflow


@pytest.fixture(scope="module")
def costs(tmp_path_factory) -> Iterator[Stack]:
    token = f"hf_CostToken{secrets.token_hex(12)}"
    with Emulator(users=[f"demo:{token}"], deploy_seconds=3, latency_ms=20, minute_seconds=MINUTE) as cloud:
        home = tmp_path_factory.mktemp("costs-standalone")
        dags = tmp_path_factory.mktemp("costs-dags")
        shutil.copytree(EXAMPLES, dags, dirs_exist_ok=True)
        shutil.copytree(SYSTEM_DAGS, dags, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        env = {
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "1",
            "HFEP_EXAMPLE_RETRY_SECONDS": "3",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            # a task whose process died with its host is retried after 20 s without a heartbeat
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        }
        stack = Stack(cloud, home, dags, env)
        try:
            yield stack
        finally:
            stack.airflow.stop()


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def xcom(airflow: Standalone, dag_id: str, run_id: str, task_id: str) -> object:
    entry = airflow.api(
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": "true", "stringify": "false"},
    )
    return entry["value"]


def jobs(path: Path, count: int) -> str:
    path.write_text("".join(json.dumps(f"night job {i}") + "\n" for i in range(count)))
    return str(path)


def run_to_its_end(airflow: Standalone, dag_id: str, run_id: str, limit: float = 240) -> str:
    wait_until(
        lambda: airflow.run_state(dag_id, run_id) in ("success", "failed"),
        f"{dag_id} to end",
        limit=limit,
        every=0.5,
    )
    return airflow.run_state(dag_id, run_id)


def check_a_cap_closed_the_night(stack: Stack, dag_id: str, run_id: str, cap: str, output: Path) -> dict:
    """What every capped night must show: closed within one poke of the cap, nothing sent after, kept, reported."""
    cloud, airflow = stack.cloud, stack.airflow
    states = airflow.task_states(dag_id, run_id)
    assert states["endpoint_window.budget"] == "failed", states
    assert states["endpoint_window.infer"] == "failed", states
    assert states["endpoint_window.pause"] == "success", states
    fired = xcom(airflow, dag_id, run_id, "endpoint_window.budget")
    assert fired["status"] == "cap"
    assert fired["cap"]["cap"] == cap
    pauses = [r["time"] for r in cloud.requests("management") if r["path"].endswith("/capped/pause")]
    closed_at = min(pauses)
    overshoot = closed_at - fired["cap"]["at"]
    assert 0 <= overshoot <= POKE_SECONDS, overshoot  # within one poke_interval of the cap
    sent = [r for r in cloud.requests("inference") if r["method"] == "POST"]
    assert sent
    assert not [r for r in sent if r["time"] >= closed_at], "an inference request reached the closed endpoint"
    kept = results(output / "results.jsonl")
    assert kept  # what was answered before the cap is committed
    report = xcom(airflow, dag_id, run_id, "endpoint_window.cost_report")
    assert report["cap"] == cap
    assert cloud.state("capped") == "paused"
    return {"overshoot": overshoot, "kept": len(kept), "report": report}


@pytest.mark.parametrize("cap", ["max_runtime", "max_cost"])
def test_a_cap_closes_the_endpoint_while_the_work_still_runs(costs, tmp_path, cap):
    costs.cloud.reset()
    costs.cloud.seed_endpoint("capped", state="paused")
    dag_id = f"hfep_cap_{cap}"
    run_id = costs.airflow.trigger(
        dag_id, conf={"jobs_path": jobs(tmp_path / "jobs.jsonl", 20000), "output_dir": str(tmp_path / "out")}
    )
    assert run_to_its_end(costs.airflow, dag_id, run_id) == "failed"
    seen = check_a_cap_closed_the_night(costs, dag_id, run_id, cap, tmp_path / "out")
    opened = xcom(costs.airflow, dag_id, run_id, "endpoint_window.resume")
    assert seen["report"]["billable_seconds"] >= CAP_SECONDS - 3  # about the cap's worth was billed
    print(
        f"\n[{cap}] closed {seen['overshoot']:.2f} s after the cap; {seen['kept']} results kept; {seen['report']['summary']}; opened {opened['updated_at']}"
    )


def test_stop_at_closes_the_endpoint_at_its_time_of_day(costs, tmp_path):
    costs.cloud.reset()
    costs.cloud.seed_endpoint("capped", state="paused")
    dag_id = f"hfep_cap_stop_at_{secrets.token_hex(3)}"
    stop_at = (datetime.now(UTC) + timedelta(seconds=45)).isoformat(timespec="seconds")
    (costs.dags / f"{dag_id}.py").write_text(
        # "airflow" and "dag" in the text: what Airflow's safe mode looks for before it parses a file
        f"# an Airflow DAG\nfrom hfep_cost_cases import capped_dag\n\ncapped_dag({dag_id!r}, stop_at={stop_at!r})\n"
    )
    run_id = costs.airflow.trigger(
        dag_id, conf={"jobs_path": jobs(tmp_path / "jobs.jsonl", 20000), "output_dir": str(tmp_path / "out")}
    )
    assert run_to_its_end(costs.airflow, dag_id, run_id) == "failed"
    seen = check_a_cap_closed_the_night(costs, dag_id, run_id, "stop_at", tmp_path / "out")
    fired = xcom(costs.airflow, dag_id, run_id, "endpoint_window.budget")
    assert fired["cap"]["at"] == datetime.fromisoformat(stop_at).timestamp()
    print(f"\n[stop_at] closed {seen['overshoot']:.2f} s after {stop_at}")


def test_a_triggerer_killed_during_the_watch_hands_it_over_with_its_spend(costs, tmp_path):
    costs.cloud.reset()
    costs.cloud.seed_endpoint("capped", state="paused")
    airflow = costs.airflow
    dag_id = "hfep_cap_max_runtime"
    run_id = airflow.trigger(
        dag_id, conf={"jobs_path": jobs(tmp_path / "jobs.jsonl", 20000), "output_dir": str(tmp_path / "out")}
    )
    wait_until(
        lambda: airflow.task_states(dag_id, run_id).get("endpoint_window.budget") == "deferred",
        "the watch to defer",
        limit=120,
        every=0.5,
    )
    old = airflow.pids("airflow triggerer")
    assert old
    doomed = airflow.with_descendants(old)
    for pid in doomed:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not any(airflow.alive(pid) for pid in doomed), "the triggerer to die", limit=10)
    airflow.start_component("triggerer")
    assert run_to_its_end(airflow, dag_id, run_id) == "failed"
    seen = check_a_cap_closed_the_night(costs, dag_id, run_id, "max_runtime", tmp_path / "out")
    fired = xcom(airflow, dag_id, run_id, "endpoint_window.budget")
    # counted from the window's opening (the resume), not from the new triggerer's pick-up
    assert fired["cap"]["seconds"] == CAP_SECONDS
    assert fired["spend"]["seconds"] >= CAP_SECONDS
    print(f"\n[triggerer kill] the next triggerer closed it {seen['overshoot']:.2f} s after the cap")


def test_every_airflow_process_killed_mid_batch_the_endpoint_stops_billing_by_itself(costs, tmp_path):
    cloud = costs.cloud
    cloud.reset()
    cloud.seed_endpoint("batch-endpoint", state="paused")
    total = 6000
    conf = {
        "jobs_path": jobs(tmp_path / "jobs.jsonl", total),
        "output_dir": str(tmp_path / "out"),
        "chunk_size": total,
    }
    run_id = costs.airflow.trigger(NIGHTLY, conf=conf)
    output = tmp_path / "out" / run_id.replace(":", "-") / "chunk-0.jsonl"
    wait_until(lambda: len(results(output)) >= 600, "600 results committed", limit=180, every=0.2)
    killed = costs.kill_everything()
    kept = results(output)
    assert 600 <= len(kept) < total
    # No Airflow left: the service scales the endpoint to zero 15 emulated minutes after the last request.
    wait_until(
        lambda: cloud.state("batch-endpoint") == "scaledToZero", "the endpoint to scale to zero", limit=60
    )
    endpoint = cloud.endpoint("batch-endpoint")
    scaling = endpoint["compute"]["scaling"]
    assert (scaling["minReplica"], scaling["scaleToZeroTimeout"]) == (0, 15)  # the net the window armed
    stopped = max(
        epoch(r["stoppedAt"])
        for r in cloud.api("GET", "/v2/endpoint/demo/batch-endpoint/replica").json()["replicas"]
    )
    last_request = max(
        r["time"] for r in cloud.requests("inference")
    )  # the last that reached it, from anyone
    billed_after = stopped - last_request
    assert billed_after <= (15 + 1) * MINUTE, (
        billed_after,
        [
            (r["time"] - last_request, r["method"], r["path"][-30:], r["status"])
            for r in cloud.requests()[-8:]
        ],
        cloud.api("GET", "/v2/endpoint/demo/batch-endpoint/replica").json(),
        last_request,
    )
    meter = cloud.billing("batch-endpoint")["billable_seconds"]
    time.sleep(2 * MINUTE)  # nothing is billed meanwhile
    assert cloud.billing("batch-endpoint")["billable_seconds"] == meter

    # The next morning: Airflow is started again. The killed task is retried (its heartbeat stopped),
    # wakes the endpoint, sends only what has no result, and the window closes it.
    last_before_restart = cloud.requests("inference")[-1]["id"]
    airflow = costs.restart()
    assert run_to_its_end(airflow, NIGHTLY, run_id, limit=300) == "success", airflow.task_states(
        NIGHTLY, run_id
    )
    resent = [
        r["json"]["inputs"]
        for r in cloud.requests("inference")
        if r["id"] > last_before_restart and r["method"] == "POST" and r["json"]
    ]
    missing = [f"night job {i}" for i in range(total) if i not in kept]
    after = [r for r in cloud.requests() if r["id"] > last_before_restart]
    assert sorted(set(resent)) == sorted(missing), (  # only the missing ones
        airflow.task_instances(NIGHTLY, run_id),
        [(r["method"], r["path"], r["status"]) for r in after[:10]],
        len(after),
    )
    final = results(output)
    assert sorted(final) == list(range(total))
    assert cloud.state("batch-endpoint") == "paused"
    # and the next night runs as any other
    night = airflow.trigger(
        NIGHTLY, conf={**conf, "chunk_size": 40, "jobs_path": jobs(tmp_path / "next.jsonl", 80)}
    )
    assert run_to_its_end(airflow, NIGHTLY, night) == "success"
    print(
        f"\n[all Airflow killed] {len(killed)} processes killed; billed {billed_after:.1f} s after the last request "
        f"(net: 15 emulated minutes of {MINUTE:g} s); the retry sent {len(resent)} of the {len(missing)} missing inputs"
    )
