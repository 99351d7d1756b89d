"""Bad input, across every operator, the sensor and the connection: each gets an error that names the
field and says how to fix it; whatever can be checked locally is refused before any request leaves
(the emulator's request log stays empty), and what only the service can judge costs one request."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_hfep._compat import AirflowFailException
from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointFromCatalogOperator,
    HuggingFaceCreateEndpointOperator,
    HuggingFaceDeleteEndpointOperator,
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
    HuggingFaceUpdateEndpointOperator,
)
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.operators.logs import HuggingFaceEndpointLogsOperator
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

from tests.specs import GPU_ENDPOINT

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.integration

SPEC = GPU_ENDPOINT


def create(**overrides: Any) -> HuggingFaceCreateEndpointOperator:
    return HuggingFaceCreateEndpointOperator(
        task_id="create", **{"endpoint_name": "fine", **SPEC, **overrides}
    )


def update(**overrides: Any) -> HuggingFaceUpdateEndpointOperator:
    return HuggingFaceUpdateEndpointOperator(
        task_id="update", **{"endpoint_name": "fine", "max_replica": 2, **overrides}
    )


def sensor(**overrides: Any) -> HuggingFaceEndpointSensor:
    return HuggingFaceEndpointSensor(task_id="ready", **{"endpoint_name": "fine", **overrides})


def infer(**overrides: Any) -> HuggingFaceEndpointInferenceOperator:
    return HuggingFaceEndpointInferenceOperator(
        task_id="infer", **{"endpoint_name": "fine", "task": "text-generation", "inputs": ["a"], **overrides}
    )


def catalog(**overrides: Any) -> HuggingFaceCreateEndpointFromCatalogOperator:
    return HuggingFaceCreateEndpointFromCatalogOperator(
        task_id="deploy", **{"endpoint_name": "fine-new", "repo_id": "openai-community/gpt2", **overrides}
    )


def logs(**overrides: Any) -> HuggingFaceEndpointLogsOperator:
    return HuggingFaceEndpointLogsOperator(task_id="logs", **{"endpoint_name": "fine", **overrides})


def jsonl(tmp_path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "jobs.jsonl"
    path.write_bytes(text.encode(encoding))
    return str(path)


def deep(levels: int) -> dict:
    job: dict = {"inputs": "x"}
    for _ in range(levels):
        job = {"inputs": job}
    return job


# (case id, operator factory (tmp_path -> operator), the field the message must name,
#  when it is refused: "parse" (building the DAG) or "run" (after rendering, before any request) or
#  "api" (only the service can tell: exactly one request, not repeated)
CASES: list[tuple[str, Callable[[Any], Any], str, str]] = [
    ("create: name with capitals", lambda t: create(endpoint_name="Bad_Name"), "endpoint_name", "parse"),
    ("create: name too long", lambda t: create(endpoint_name="x" * 40), "endpoint_name", "parse"),
    (
        "create: templated name, bad once rendered",
        lambda t: create(endpoint_name="{{ 'Bad_Name' }}"),
        "endpoint_name",
        "run",
    ),
    # The service defines accelerators (it adds some): an unknown one is sent, and the service refuses it.
    ("create: unknown accelerator", lambda t: create(accelerator="tpu"), "accelerator", "service"),
    ("create: min above max replicas", lambda t: create(min_replica=3, max_replica=1), "replica", "parse"),
    ("create: negative replicas", lambda t: create(min_replica=-1), "min_replica", "parse"),
    ("create: unknown type", lambda t: create(type="secret"), "type", "parse"),
    (
        "create: unknown scaling metric",
        lambda t: create(scaling_metric="gpuUtilization"),
        "scaling_metric",
        "parse",
    ),
    (
        "create: scale to zero with replicas kept",
        lambda t: create(min_replica=1, scale_to_zero_timeout=15),
        "scale_to_zero_timeout",
        "parse",
    ),
    ("create: empty task", lambda t: create(task=" "), "task", "run"),
    (
        "create: custom image without url",
        lambda t: create(custom_image={"health_route": "/health"}),
        "custom_image",
        "run",
    ),
    ("create: env value not a string", lambda t: create(env={"MAX_TOKENS": 5}), "env", "run"),
    ("create: tags not a list", lambda t: create(tags="nightly"), "tags", "run"),
    ("create: empty repository", lambda t: create(repository=""), "repository", "run"),
    ("create: unknown if_exists", lambda t: create(if_exists="overwrite"), "if_exists", "parse"),
    ("create: negative timeout", lambda t: create(timeout=-1), "timeout", "parse"),
    ("update: unknown if_updating", lambda t: update(if_updating="later"), "if_updating", "parse"),
    ("update: max_replica zero", lambda t: update(max_replica=0), "max_replica", "parse"),
    (
        "update: nothing to change",
        lambda t: HuggingFaceUpdateEndpointOperator(task_id="update", endpoint_name="fine"),
        "update",
        "parse",
    ),
    (
        "pause: namespace '..' (a step up the URL)",
        lambda t: HuggingFacePauseEndpointOperator(task_id="p", endpoint_name="fine", namespace=".."),
        "namespace",
        "parse",
    ),
    (
        "pause: namespace '.'",
        lambda t: HuggingFacePauseEndpointOperator(task_id="p", endpoint_name="fine", namespace="."),
        "namespace",
        "parse",
    ),
    (
        "delete: name ending in a newline",
        lambda t: HuggingFaceDeleteEndpointOperator(task_id="d", endpoint_name="fine\n"),
        "endpoint_name",
        "parse",
    ),
    (
        "catalog: repo_id climbing the URL",
        lambda t: catalog(repo_id="../../v2/endpoint"),
        "repo_id",
        "run",
    ),
    (
        "pause: namespace with a slash",
        lambda t: HuggingFacePauseEndpointOperator(task_id="p", endpoint_name="fine", namespace="a/b"),
        "namespace",
        "parse",
    ),
    (
        "resume: zero poll_interval",
        lambda t: HuggingFaceResumeEndpointOperator(task_id="r", endpoint_name="fine", poll_interval=0),
        "poll_interval",
        "parse",
    ),
    (
        "scale_to_zero: empty name",
        lambda t: HuggingFaceScaleToZeroEndpointOperator(task_id="s", endpoint_name=""),
        "endpoint_name",
        "parse",
    ),
    (
        "delete: name starting with a dash",
        lambda t: HuggingFaceDeleteEndpointOperator(task_id="d", endpoint_name="-fine"),
        "endpoint_name",
        "parse",
    ),
    ("sensor: unknown target_status", lambda t: sensor(target_status="ready"), "target_status", "parse"),
    (
        "sensor: start_from_trigger without deferring",
        lambda t: sensor(deferrable=False, start_from_trigger=True),
        "start_from_trigger",
        "parse",
    ),
    ("create: unknown on_kill_action", lambda t: create(on_kill_action="delete"), "on_kill_action", "parse"),
    (
        "resume: unknown on_kill_action",
        lambda t: HuggingFaceResumeEndpointOperator(task_id="r", endpoint_name="fine", on_kill_action="stop"),
        "on_kill_action",
        "parse",
    ),
    ("sensor: bad name", lambda t: sensor(endpoint_name="my endpoint"), "endpoint_name", "parse"),
    (
        "create: PrivateLink sharing without the account",
        lambda t: create(private_link_shared=True),
        "private_link_shared",
        "parse",
    ),
    ("catalog: neither repo_id nor recipe_id", lambda t: catalog(repo_id=None), "repo_id", "parse"),
    ("catalog: both repo_id and recipe_id", lambda t: catalog(recipe_id="gpt2-cpu"), "repo_id", "parse"),
    ("catalog: bad name", lambda t: catalog(endpoint_name="Fine New"), "endpoint_name", "parse"),
    (
        "catalog: templated name, bad once rendered",
        lambda t: catalog(endpoint_name="{{ 'Fine_New' }}"),
        "endpoint_name",
        "run",
    ),
    ("catalog: unknown if_exists", lambda t: catalog(if_exists="replace"), "if_exists", "parse"),
    ("logs: zero tail", lambda t: logs(tail=0), "tail", "parse"),
    ("logs: bad name", lambda t: logs(endpoint_name="-fine"), "endpoint_name", "parse"),
    ("infer: unknown task", lambda t: infer(task="text2text"), "task", "parse"),
    ("infer: inputs and input_path", lambda t: infer(input_path="/tmp/jobs.jsonl"), "inputs", "parse"),
    ("infer: a job of the wrong type", lambda t: infer(inputs=["ok", 3]), r"inputs\[1\]", "run"),
    (
        "infer: chat job that is not messages",
        lambda t: infer(task="chat-completion", inputs=["hi"]),
        r"inputs\[0\]",
        "run",
    ),
    (
        "infer: fill-mask job without the mask",
        lambda t: infer(task="fill-mask", inputs=["no mask here"]),
        r"inputs\[0\]",
        "run",
    ),
    (
        "infer: input_path missing",
        lambda t: infer(inputs=None, input_path=str(t / "nowhere.jsonl")),
        "input_path",
        "run",
    ),
    (
        "infer: input_path line not JSON",
        lambda t: infer(inputs=None, input_path=jsonl(t, '"ok"\nnot json\n')),
        "input_path",
        "run",
    ),
    (
        "infer: input_path line not UTF-8",
        lambda t: infer(inputs=None, input_path=jsonl(t, '"ok"\n"caf\xe9"\n', encoding="latin-1")),
        "input_path: line 2 is not UTF-8",
        "run",
    ),
    (
        "infer: input_path line nested too deep",
        lambda t: infer(inputs=None, input_path=jsonl(t, '"ok"\n' + "[" * 5000 + "]" * 5000 + "\n")),
        "input_path: line 2 (nests deeper|is not JSON)",
        "run",
    ),
    (
        "infer: input_path line too long",
        lambda t: infer(inputs=None, input_path=jsonl(t, '"ok"\n"' + "x" * 100 + '"\n'), max_input_bytes=50),
        "input_path: line 2 is longer than 50 bytes",
        "run",
    ),
    (
        "infer: a job nested too deep",
        lambda t: infer(task="raw", inputs=[{"inputs": "ok"}, deep(500)]),
        r"inputs\[1\]: nests deeper",
        "run",
    ),
    (
        "infer: output_path is the input file",
        lambda t: infer(inputs=None, input_path=jsonl(t, '"ok"\n'), output_path=str(t / "jobs.jsonl")),
        "output_path",
        "run",
    ),
    ("infer: zero max_concurrency", lambda t: infer(max_concurrency=0), "max_concurrency", "parse"),
    ("infer: unknown on_item_error", lambda t: infer(on_item_error="skip"), "on_item_error", "parse"),
    ("infer: unknown input_format", lambda t: infer(input_format="csv"), "input_format", "parse"),
    ("infer: jobs without a task", lambda t: infer(task=None, input_format="jobs"), "task", "parse"),
    (
        "infer: output_schema that is no schema",
        lambda t: infer(output_schema={"type": "objekt"}),
        "output_schema",
        "parse",
    ),
    (
        "infer: output_schema on a task that generates no text",
        lambda t: infer(task="embeddings", output_schema={"type": "object"}),
        "output_schema",
        "parse",
    ),
    (
        "infer: negative invalid_output_retries",
        lambda t: infer(invalid_output_retries=-1),
        "invalid_output_retries",
        "parse",
    ),
    (
        "infer: an OpenAI batch line of another route",
        lambda t: infer(
            task=None,
            inputs=None,
            input_path=jsonl(
                t, '{"custom_id": "a", "method": "POST", "url": "/v1/responses", "body": {"input": "x"}}\n'
            ),
        ),
        "input_path",
        "run",
    ),
    (
        "infer: a malformed response_format",
        lambda t: infer(parameters={"response_format": {"type": "yaml"}}),
        "parameters.response_format",
        "run",
    ),
    ("conn: missing connection", lambda t: sensor(hf_conn_id="hf_nowhere"), "hf_nowhere", "run"),
    ("conn: no token", lambda t: sensor(hf_conn_id="hf_no_token"), "token", "run"),
    (
        "conn: plain http to another machine",
        lambda t: sensor(hf_conn_id="hf_remote_http"),
        "plain http",
        "run",
    ),
    ("conn: not an http URL", lambda t: sensor(hf_conn_id="hf_ftp"), "scheme", "run"),
    ("conn: timeout not a number", lambda t: sensor(hf_conn_id="hf_bad_timeout"), "timeout", "run"),
    ("conn: verify not a boolean", lambda t: sensor(hf_conn_id="hf_bad_verify"), "verify", "run"),
    ("infer: plain http endpoint URL", lambda t: infer(hf_conn_id="hf_remote_http"), "plain http", "run"),
    (
        "conn: plain HTTP:// (capitals) to another machine",
        lambda t: sensor(hf_conn_id="hf_remote_http_capitals"),
        "plain http",
        "run",
    ),
    ("api: expired token", lambda t: sensor(hf_conn_id="hf_expired"), "token", "api"),
    (
        "api: namespace not accessible",
        lambda t: HuggingFacePauseEndpointOperator(
            task_id="p", endpoint_name="fine", namespace="someone-else"
        ),
        "namespace",
        "api",
    ),
    (
        "api: endpoint does not exist",
        lambda t: HuggingFacePauseEndpointOperator(task_id="p", endpoint_name="absent"),
        "endpoint_name",
        "api",
    ),
]


class TaskInstanceStub:
    dag_id, task_id, run_id, map_index = "bad_input", "task", "manual__1", -1

    def xcom_push(self, key: str, value: object) -> None:
        pass


@pytest.fixture(autouse=True)
def connections(cloud, monkeypatch):
    def conn(conn_id: str, **fields: Any) -> None:
        base = json.loads(cloud.airflow_connection())
        base.update(fields)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(base))

    conn("hf_no_token", password="")
    conn("hf_remote_http", host="http://api.example.com")
    conn("hf_remote_http_capitals", host="HTTP://api.example.com")
    conn("hf_ftp", host="ftp://api.example.com")
    conn("hf_bad_timeout", extra={"namespace": "demo", "timeout": "soon"})
    conn("hf_bad_verify", extra={"namespace": "demo", "verify": "maybe"})
    conn("hf_expired", password="hf_expired_token_0000")


def attempt(make: Callable[[], Any]) -> tuple[str, Exception | None]:
    """Build the operator, then run it as a worker would; return when it was refused, and why."""
    try:
        operator = make()
    except Exception as exc:
        return "parse", exc
    try:
        operator.execute({"ti": TaskInstanceStub(), "task_instance": TaskInstanceStub()})
    except Exception as exc:
        return "run", exc
    return "accepted", None


@pytest.mark.parametrize(
    ("make", "field", "stage"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input_is_refused_with_the_field_and_the_fix(cloud, tmp_path, make, field, stage):
    cloud.seed_endpoint("fine", state="paused")
    cloud.clear_requests()
    refused_at, error = attempt(lambda: make(tmp_path))
    assert error is not None, "accepted"
    message = str(error)
    assert re.search(field, message), message
    assert re.search(r"\bFix\b", message, re.IGNORECASE), message
    sent = cloud.requests()
    if stage == "api":
        assert refused_at == "run"
        assert len(sent) == 1
        assert sent[0]["status"] in (401, 403, 404)
    elif stage == "service":  # only the service can judge it: the change itself is refused, once
        assert refused_at == "run"
        changes = [r for r in sent if r["method"] != "GET"]
        assert len(changes) == 1
        assert changes[0]["status"] == 400
    else:
        assert refused_at == stage
        assert sent == []  # nothing reached the service
        # one error type for every argument refused locally (a missing connection is Airflow's own)
        if "hf_nowhere" not in field:
            # a deferrable sensor's own retries are for Airflow's failures: its verdicts come final,
            # as AirflowFailException, with the refusal as their cause
            refusal = error.__cause__ if isinstance(error, AirflowFailException) else error
            assert isinstance(refusal, InvalidEndpointArgumentError), type(error)


def test_the_table_is_wide_enough():
    assert len(CASES) >= 25
    kinds = {case[0].split(":")[0] for case in CASES}
    assert {
        "create",
        "update",
        "pause",
        "resume",
        "scale_to_zero",
        "delete",
        "sensor",
        "infer",
        "conn",
        "api",
        "catalog",
        "logs",
    } <= kinds
