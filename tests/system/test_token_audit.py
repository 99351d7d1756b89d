"""The token audit: run the example DAGs (green and failing) on a real `airflow standalone` with a
distinctive random token, then search every trace for it: every file of AIRFLOW_HOME (task and
triggerer logs, each component's output, the metadata database with XCom, rendered fields and DAG
runs), the REST API's task instances (rendered fields), the trigger table's kwargs as the triggerer
reads them, and the emulator's request log."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.system

READ_TRIGGERS = """
from airflow.models.trigger import Trigger
from airflow.utils.session import create_session
with create_session() as session:
    for trigger in session.query(Trigger):
        print(trigger.classpath, repr(trigger.kwargs))
"""


def run_to_end(
    airflow, dag_id: str, conf: dict | None = None, during=None, limit: float = 240
) -> tuple[str, str]:
    run_id = airflow.trigger(dag_id, conf=conf)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = airflow.run_state(dag_id, run_id)
        if state in ("success", "failed"):
            return run_id, state
        if during:
            during(run_id)
        time.sleep(0.5)
    raise AssertionError(f"{dag_id} did not finish: {airflow.task_states(dag_id, run_id)}")


def test_the_token_appears_nowhere(stack, tmp_path):
    cloud, airflow, home = stack
    token = cloud.token
    assert token.startswith("hf_AuditToken")
    assert len(token) > 30
    needles = (token.encode(), token[-16:].encode())  # whole, or a telling piece of it

    cloud.reset()
    triggers: list[str] = []

    def snapshot_triggers(run_id: str) -> None:
        if not triggers and "deferred" in airflow.task_states("hf_endpoint_lifecycle", run_id).values():
            out = subprocess.run(
                [sys.executable, "-c", READ_TRIGGERS],
                env=airflow.env,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            )
            triggers.extend(
                line for line in out.stdout.splitlines() if "HuggingFaceEndpointStatusTrigger" in line
            )

    runs = [
        ("hf_endpoint_lifecycle", *run_to_end(airflow, "hf_endpoint_lifecycle", during=snapshot_triggers))
    ]
    runs.append(("hf_tgi_chat", *run_to_end(airflow, "hf_tgi_chat")))
    cloud.seed_endpoint("batch-endpoint", state="paused")
    runs.append(
        ("hf_nightly_batch", *run_to_end(airflow, "hf_nightly_batch", conf={"output_dir": str(tmp_path)}))
    )
    cloud.set_faults([{"scope": "inference", "kind": "500"}])  # a failing run: exceptions in the task logs
    runs.append(
        (
            "hf_nightly_batch",
            *run_to_end(airflow, "hf_nightly_batch", conf={"output_dir": str(tmp_path / "failing")}),
        )
    )
    cloud.clear_faults()
    assert [state for _, _, state in runs] == ["success", "success", "success", "failed"]

    # the trigger table, decrypted as the triggerer reads it, while the lifecycle's create waited
    assert triggers
    assert "endpoint_name" in triggers[0]
    leaks = [f"trigger kwargs: {line}" for line in triggers if any(n.decode() in line for n in needles)]

    # every file Airflow wrote: logs of tasks and triggers, components' output, the database, the config
    files = [p for p in home.rglob("*") if p.is_file()]
    task_logs = [p for p in files if "dag_id=hf_endpoint_lifecycle" in str(p)]
    assert task_logs
    assert any("trigger" in str(p) for p in files if "dag_id=" in str(p))
    assert (home / "airflow.db").stat().st_size > 0
    assert any(
        b"injected fault 500" in p.read_bytes() for p in files if "dag_id=hf_nightly_batch" in str(p)
    )  # the failure was logged
    leaks += [f"file: {p}" for p in files if any(n in p.read_bytes() for n in needles)]

    # what the REST API shows: task instances with their rendered fields, and their XCom values
    shown = []
    for dag_id, run_id, _ in runs:
        instances = airflow.task_instances(dag_id, run_id)
        shown.append(json.dumps(instances))
        for ti in instances:
            entries = airflow.api(
                "GET",
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries",
                params={"map_index": ti["map_index"]},
            )
            for entry in entries["xcom_entries"]:
                value = airflow.http.get(
                    f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/xcomEntries/{entry['key']}",
                    params={"map_index": ti["map_index"]},
                )
                shown.append(value.text)
    api_text = "\n".join(shown)
    assert "rendered_fields" in api_text
    assert "batch-endpoint" in api_text
    assert "return_value" in api_text
    leaks += [f"REST API: {n.decode()}" for n in needles if n.decode() in api_text]

    # the emulator's request log as the provider's Emulator exposes it (headers redacted)
    log = json.dumps(cloud.requests())
    assert '"authorization"' in log.lower()
    leaks += [f"request log: {n.decode()}" for n in needles if n.decode() in log]

    assert leaks == []
    print(
        f"\n[token audit] {len(files)} files ({sum(p.stat().st_size for p in files) // 1024} KiB), "
        f"{len(shown)} API answers, {len(triggers)} stored trigger(s), {len(cloud.requests())} logged requests: no trace of the token"
    )
