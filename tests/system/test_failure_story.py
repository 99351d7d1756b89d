"""A deployment that fails while its create waits in a real triggerer: the worker process that ends the
task (a fresh one, after the deferral) writes the endpoint's story to the task log file (the likely
cause, the replica's state, the log lines) with the secret value the task sent hidden everywhere."""

from __future__ import annotations

import pytest

from tests.helpers import wait_until
from tests.system.test_kill import looks

pytestmark = pytest.mark.system

NAME = "fails-deferred"
SECRET = "story-secret-9d41e2"


def test_a_failure_after_a_deferral_is_explained_in_the_task_log(stack):
    cloud, airflow, home = stack
    cloud.reset()
    # the worker's look finds it deploying (so it defers); the trigger's next look finds it failed
    cloud.on("get", NAME, state="failed", message="Container exited: CUDA out of memory", after=1)
    run_id = airflow.trigger("hfep_fails_deferred")
    wait_until(
        lambda: airflow.run_state("hfep_fails_deferred", run_id) == "failed",
        "the run to fail",
        limit=180,
        every=0.5,
    )
    assert looks(cloud, NAME) >= 2  # the worker's look, then the trigger's
    assert [rule["fired"] for rule in cloud.rules()] == [1]

    logs = [p for p in home.rglob("*") if p.is_file() and "dag_id=hfep_fails_deferred" in str(p)]
    assert any("trigger" in p.name for p in logs), logs  # it did wait in the triggerer
    text = "\n".join(p.read_text(errors="replace") for p in logs)
    assert "failed to deploy: Container exited: CUDA out of memory" in text
    assert "Likely cause: the model does not fit in the instance's memory" in text
    assert "exit code 137" in text  # the replica's state
    assert "Container exited with code 137" in text  # a log line
    assert "MODEL_CONFIG_BLOB=***" in text  # the container printed its environment
    leaks = [str(p) for p in home.rglob("*.log") if SECRET.encode() in p.read_bytes()]
    leaks += [str(p) for p in logs if SECRET.encode() in p.read_bytes()]
    assert leaks == []
    print(
        f"\n[failure story] {len(logs)} log file(s) of the run: cause, replica and log lines; secret hidden"
    )
