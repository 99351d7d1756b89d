"""explain(): the likely cause of a failure from the endpoint's log and replicas; redact(): nothing secret shown."""

from __future__ import annotations

import pytest

from airflow_provider_hfep.endpoints.diagnostics import MAX_LINES, explain, redact
from airflow_provider_hfep.endpoints.models import LogLine, Replica

from tests.unit.endpoints.test_waiting import endpoint


def log(*messages: str, level: str = "info") -> list[LogLine]:
    return [
        LogLine(message=m, timestamp=f"2026-11-26T00:00:{i:02d}Z", level=level)
        for i, m in enumerate(messages)
    ]


@pytest.mark.parametrize(
    ("failed", "lines", "replicas", "health_failing", "cause"),
    [
        (
            "Container exited",
            log("torch.OutOfMemoryError: CUDA out of memory", level="error"),
            [],
            False,
            "memory",
        ),
        ("", log("401 Client Error for url .../config.json", level="error"), [], False, "gated or private"),
        ("Insufficient capacity in us-east-1", [], [], False, "no capacity"),
        ("", log("Failed to pull image: manifest unknown", level="error"), [], False, "cannot be pulled"),
        (
            "",
            log("ValueError: something odd", level="error"),
            [],
            False,
            "reported: ValueError: something odd",
        ),
        ("", [], [Replica("r-0", live=False, updating=False, stage="failed", exit_code=3)], False, "code 3"),
        ("", log("listening on 8080"), [], True, "health route never answered 200"),
        ("Scheduling failed", [], [], False, "the service says: Scheduling failed"),
        ("", [], [], False, "nothing in the endpoint's log or replicas explains it"),
    ],
)
def test_the_likely_cause_comes_from_the_log_the_replicas_then_the_status(
    failed, lines, replicas, health_failing, cause
):
    diagnosis = explain(endpoint("failed", failed), lines, replicas, health_failing=health_failing)
    assert cause in diagnosis.cause


def test_a_running_endpoint_without_an_error_blames_the_requests_not_its_ready_message():
    diagnosis = explain(endpoint("running", "Endpoint is ready"), log("Model loaded"), [])
    assert diagnosis.cause.startswith("it runs and its log shows no error")


def test_errors_come_first_and_the_report_is_bounded():
    lines = log(*(f"step {i}" for i in range(100))) + log("RuntimeError: boom", level="error")
    diagnosis = explain(endpoint("failed"), lines, [Replica("r-0", False, False, "failed", 1)])
    assert len(diagnosis.lines) == MAX_LINES
    assert "RuntimeError: boom" in diagnosis.lines[0]
    assert diagnosis.lines[-1].endswith("step 99")  # then the last of the others, in order
    report = diagnosis.report()
    assert report[0] == f"Likely cause: {diagnosis.cause}"
    assert report[1].startswith("Replica r-0")
    long = explain(endpoint("failed"), log("x" * 5000), [])
    assert len(long.lines[0]) <= 300


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("loading with hf_AbCdEf1234567890", "hf_AbCdEf1234567890"),
        ("HF_TOKEN=plain-value-123 starting", "plain-value-123"),
        ("env: AWS_SECRET_ACCESS_KEY: wJalrXUtnFEMI", "wJalrXUtnFEMI"),
        ("db_password=hunter22 port=5432", "hunter22"),
        ("the given secret s3cr3t-value appears", "s3cr3t-value"),
        ("OPENAI_KEY=sk-abc123xyz", "sk-abc123xyz"),
        ("DATABASE_URL=postgres://app:pw123secret@db:5432/x", "pw123secret"),
        ('config {"DB_PASSWORD": "x9x9x9", "port": 1}', "x9x9x9"),
        ("headers: Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("curl -H 'authorization: Basic dXNlcjpwYXNz'", "dXNlcjpwYXNz"),
    ],
)
def test_redact_hides_tokens_given_secrets_and_credential_named_values(text, hidden):
    shown = redact(text, secrets=["s3cr3t-value"])
    assert hidden not in shown
    assert "***" in shown


def test_redact_leaves_ordinary_text_alone():
    text = "port=5432 max_total_tokens: 4096 MAX_INPUT_TOKENS=1024 tokenizer: gpt2 monkey=1 keys=3 Loaded"
    assert redact(text) == text


def test_every_line_and_the_cause_are_redacted():
    token = "hf_SecretToken0123456789"
    lines = log(f"Traceback: 401 Client Error with {token}", level="error")
    diagnosis = explain(endpoint("failed"), lines, [], secrets=[token])
    assert token not in diagnosis.cause
    assert all(token not in line for line in diagnosis.report())
