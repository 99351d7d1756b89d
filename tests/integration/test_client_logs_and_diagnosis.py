"""
What our client (sync and async) reads of an endpoint's life against the emulator: its logs (v3, and
v2 where v3 answers 501), its replicas, its metrics, and the diagnosis of a failed deployment, with no
token or secret shown. Requests are counted in the emulator's log.
"""

from __future__ import annotations

import time

import pytest

from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError, NotFoundError

pytestmark = pytest.mark.integration


# -- logs, replicas, metrics -------------------------------------------------------------------


def test_logs_come_from_v3_and_from_v2_where_v3_is_not_offered(api, cloud):
    cloud.seed_endpoint("crashy", state="initializing")
    cloud.set_state("crashy", "failed", "Container exited: CUDA out of memory")
    cloud.clear_requests()
    structured = api.logs("crashy")
    assert [r["path"] for r in cloud.requests("management") if "logs" in r["path"]] == [
        "/v3/endpoint/demo/crashy/logs"
    ]
    assert ("error", "Container exited with code 137") in [(line.level, line.message) for line in structured]
    cloud.set_logs_v3(False)
    cloud.clear_requests()
    text = api.logs("crashy")
    assert [(r["path"], r["status"]) for r in cloud.requests("management") if "logs" in r["path"]] == [
        ("/v3/endpoint/demo/crashy/logs", 501),
        ("/v2/endpoint/demo/crashy/logs", 200),
    ]
    # the same story either way: v2's text lines parsed into the same fields
    assert [(line.level, line.message, line.replica) for line in text] == [
        (line.level, line.message, line.replica) for line in structured
    ]
    assert api.logs("crashy", tail=2)[-1].message == "Container exited with code 137"
    # filtered with tail: the same lines from v2 (filtered here, read further back) as from v3
    # (the log ends with two error lines: the last info line lies further back than tail=1)
    v2_info = api.logs("crashy", level="info", tail=1)
    cloud.set_logs_v3(True)
    assert v2_info == api.logs("crashy", level="info", tail=1)
    assert len(v2_info) == 1
    assert v2_info[0].level == "info"


def test_logs_and_diagnosis_never_show_the_token_or_a_secret(api, cloud):
    cloud.seed_endpoint(
        "leaky",
        state="initializing",
        model={
            "repository": "openai-community/gpt2",
            "framework": "pytorch",
            "task": "text-generation",
            "image": {"huggingface": {}},
            "env": {"HF_TOKEN": cloud.token, "DEBUG": "1"},
            "secrets": {"DB_PASSWORD": "pa55-word-value", "OPENAI_API_KEY": "sk-proj-123456"},
        },
    )
    raw = cloud.api("GET", "/v2/endpoint/demo/leaky/logs").text
    assert cloud.token in raw  # the container did print them...
    assert "pa55-word-value" in raw
    cloud.set_state("leaky", "failed", "Container exited: KeyError")
    lines = [str(line) for line in api.logs("leaky")]
    report = "\n".join(api.diagnose("leaky").report())
    for shown in ("\n".join(lines), report):  # ...we never show them
        assert cloud.token not in shown
        assert "pa55-word-value" not in shown
        assert "sk-proj-123456" not in shown
        assert "DEBUG=1" in shown  # what is not a credential stays readable
    assert "HF_TOKEN=***" in "\n".join(lines)


def test_replicas_follow_the_endpoint(api, cloud):
    body = {
        "compute": {
            "accelerator": "gpu",
            "instanceType": "nvidia-l4",
            "instanceSize": "x1",
            "scaling": {"minReplica": 2, "maxReplica": 2},
        }
    }
    cloud.seed_endpoint("pair", state="running", **body)
    replicas = api.replicas("pair")
    assert [(r.live, r.updating, r.stage, r.exit_code) for r in replicas] == [
        (True, False, "running", None)
    ] * 2
    assert len({r.id for r in replicas}) == 2
    cloud.set_state("pair", "failed", "Container exited: out of memory")
    assert {(r.live, r.stage, r.exit_code) for r in api.replicas("pair")} == {(False, "failed", 137)}
    cloud.set_state("pair", "paused")  # none runs; the stopped ones keep their story (start, stop, exit)
    assert [r for r in api.replicas("pair") if r.live or r.stopped_at is None] == []
    assert {(r.stage, r.exit_code) for r in api.replicas("pair")} == {("failed", 137)}
    with pytest.raises(NotFoundError):
        api.replicas("nobody")


def test_metrics_over_a_window(api, cloud):
    cloud.seed_endpoint("busy")
    now = time.time()
    pending = api.metrics("busy", "pending-request", start=now - 600, end=now, step_seconds=60)
    assert len(pending["series"]) == 11
    # the replicas' lives: none before it was seeded, its one replica from then on
    running = api.metrics("busy", "replica-running", start=int(now) - 120, end=int(now) + 2, step_seconds=61)
    assert [point["value"] for point in running["series"]] == [0, 0, 1]
    with pytest.raises(InvalidEndpointArgumentError, match="start"):
        api.metrics("busy", "pending-request", start=now, end=now - 60)


# -- diagnosis ---------------------------------------------------------------------------------


def test_a_failed_deployment_is_explained(api, cloud):
    cloud.seed_endpoint("doomed", state="initializing")
    cloud.set_state("doomed", "failed", "Container exited: CUDA out of memory")
    diagnosis = api.diagnose("doomed")
    assert diagnosis.cause.startswith("the model does not fit in the instance's memory")
    assert any("Container exited with code 137" in line for line in diagnosis.lines)
    # errors first
    assert "ERROR" in diagnosis.lines[0].upper()
    assert any("exit code 137" in replica for replica in diagnosis.replicas)
    assert diagnosis.unavailable == ()


def test_a_diagnosis_of_a_vanished_endpoint_says_what_it_could_not_read(api, cloud):
    diagnosis = api.diagnose("gone")
    assert diagnosis.cause == "nothing in the endpoint's log or replicas explains it"
    assert len(diagnosis.unavailable) == 3


def test_bad_arguments_of_these_calls_are_refused_before_any_request(api, cloud):
    now = time.time()
    cloud.clear_requests()
    for call, field in [
        (lambda: api.logs("Bad_Name"), "endpoint_name"),
        (lambda: api.logs("fine", tail=-1), "tail"),
        (lambda: api.metrics("fine", "pending-request", start=now, end=now - 1), "start"),
        (lambda: api.metrics("fine", "pending-request", start=now - 60, end=now, step_seconds=0), "step"),
    ]:
        with pytest.raises(InvalidEndpointArgumentError, match=field) as refused:
            call()
        assert "Fix" in str(refused.value)
    assert cloud.requests() == []
