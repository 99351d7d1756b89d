"""The pure layer of OpenAI Batch lines and structured output: checks, spellings, result lines, schemas."""

from __future__ import annotations

import jsonschema
import pytest
from openai.types import BatchError

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
from airflow_provider_hfep.inference import engines
from airflow_provider_hfep.inference.batch import INVALID_OUTPUT, ItemResult
from airflow_provider_hfep.inference.openai_batch import RequestLines, ResultLines, error_code, result_line
from airflow_provider_hfep.inference.shapes import TASKS
from airflow_provider_hfep.inference.structured import (
    InvalidOutputError,
    OutputSchema,
    as_tgi_chat,
    as_tgi_grammar,
    structured_task,
)

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
AS_OPENAI = {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}


def line(custom_id: str, url: str = "/v1/chat/completions", **body) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": body or {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    }


def test_a_repeated_custom_id_is_refused_naming_both_lines():
    lines = RequestLines("input_path")
    lines.check(0, line("a"))
    lines.check(1, line("b"))
    with pytest.raises(InvalidEndpointArgumentError) as error:
        lines.check(2, line("a"))
    assert "request 3 (custom_id 'a') repeats the custom_id of request 1" in str(error.value)
    assert lines.indices == {"a": 0, "b": 1}
    assert lines.describe("/v1/chat/completions") == "request 1 (custom_id 'a')"


def test_a_named_task_must_agree_with_every_line():
    lines = RequestLines("inputs", task="completion")
    lines.check(0, line("a", "/v1/completions", prompt="x"))
    with pytest.raises(
        InvalidEndpointArgumentError, match=r"task: 'completion' does not agree with request 2"
    ):
        lines.check(1, line("b"))


def test_lines_asking_for_structured_output_are_remembered_by_route():
    lines = RequestLines("inputs")
    lines.check(0, line("plain"))
    lines.check(
        1, line("text", messages=[{"role": "user", "content": "x"}], response_format={"type": "text"})
    )
    lines.check(2, line("json", messages=[{"role": "user", "content": "x"}], response_format=AS_OPENAI))
    assert lines.structured == {"/v1/chat/completions": (2, "json")}


def test_tgi_spells_openai_formats_as_its_grammars():
    chat = {"messages": [], "response_format": AS_OPENAI}
    assert as_tgi_chat(chat)["response_format"] == {"type": "json_object", "value": SCHEMA}
    assert as_tgi_chat({"response_format": {"type": "json_object"}})["response_format"] == {
        "type": "json_object",
        "value": {"type": "object"},
    }
    assert "response_format" not in as_tgi_chat({"response_format": {"type": "text"}})
    generate = {"inputs": "x", "parameters": {"max_new_tokens": 4, "response_format": AS_OPENAI}}
    assert as_tgi_grammar(generate) == {
        "inputs": "x",
        "parameters": {"max_new_tokens": 4, "grammar": {"type": "json", "value": SCHEMA}},
    }


@pytest.mark.parametrize(
    ("kind", "task", "spelled"),
    [
        ("tgi", "text-generation", lambda body: body["parameters"]["grammar"]["value"]),
        ("tgi", "chat-completion", lambda body: body["response_format"]["value"]),
        ("vLLM", "completion", lambda body: body["response_format"]["json_schema"]["schema"]),
        ("sGLang", "chat-completion", lambda body: body["response_format"]["json_schema"]["schema"]),
    ],
)
def test_an_output_schema_is_asked_for_in_each_engines_spelling(kind, task, spelled):
    engine = engines.engine_for(kind)
    served = engine.serving("org/model")[task]
    shaped = structured_task(served, engine, output_schema=OutputSchema(SCHEMA))
    item = [{"role": "user", "content": "x"}] if task == "chat-completion" else "x"
    assert spelled(shaped.body(item, {})) == SCHEMA
    assert shaped.validate is not None
    assert shaped.validate(item, '{"n": 3}') == {"n": 3}


@pytest.mark.parametrize(
    ("kind", "task"), [("tgi", "completion"), ("tei", "embeddings"), ("huggingface", "text-generation")]
)
def test_a_response_format_is_refused_where_the_route_cannot_constrain_answers(kind, task):
    engine = engines.engine_for(kind)
    with pytest.raises(InvalidEndpointArgumentError, match="parameters.response_format: .* cannot constrain"):
        structured_task(engine.serving("m")[task], engine, asked_by="parameters.response_format")


def test_without_structured_output_the_task_is_unchanged():
    engine = engines.engine_for("tgi")
    task = engine.serving("m")["text-generation"]
    shaped = structured_task(task, engine)
    assert shaped.body("x", {"max_new_tokens": 2}) == TASKS["text-generation"].body(
        "x", {"max_new_tokens": 2}
    )
    assert shaped.validate is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("words", "not JSON"),
        ('{"n": "three"}', "does not match the schema at n: 'three' is not of type 'integer'"),
        ("{}", "does not match the schema at (root): 'n' is a required property"),
        (None, "expected a JSON text, got NoneType"),
    ],
)
def test_an_invalid_answer_says_why(text, message):
    with pytest.raises(InvalidOutputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        OutputSchema(SCHEMA).parse(text)


def test_result_lines_as_openai_writes_them_and_as_the_store_reads_them():
    answered = result_line("a", ItemResult(0, {"object": "chat.completion"}, request_id="r-1"))
    assert answered["response"] == {
        "status_code": 200,
        "request_id": "r-1",
        "body": {"object": "chat.completion"},
    }
    assert answered["error"] is None
    failed = result_line("b", ItemResult(1, error="invalid output: not JSON", kind=INVALID_OUTPUT))
    assert failed["response"] is None
    assert BatchError.model_validate(failed["error"]).code == "invalid_output"
    records = ResultLines({"a": 0, "b": 1})
    assert (records.index(answered), records.answered(answered)) == (0, True)
    assert (records.index(failed), records.answered(failed)) == (1, False)
    assert records.index({"custom_id": "not ours"}) is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        ("HTTP 422: bad body", "http_422"),
        ("timeout after 60 s (ReadTimeout)", "timeout"),
        ("connection error (ConnectError: refused)", "connection_error"),
        ("unexpected answer: KeyError: 'choices'", "unexpected_answer"),
        ("something else", "request_failed"),
    ],
)
def test_each_failure_has_an_error_code(error, code):
    assert error_code(ItemResult(0, error=error)) == code


@pytest.mark.parametrize(
    "schema",
    [
        SCHEMA,
        {"type": "object"},
        {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 30, "maxLength": 40},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 2},
                "score": {"type": "number", "minimum": 0.5, "maximum": 3},
                "nested": {"type": ["null", "object"], "properties": {"ok": {"type": "boolean"}}},
                "kind": {"anyOf": [{"const": "x"}, {"type": "integer"}]},
            },
            "required": ["name", "tags", "score", "nested", "kind"],
        },
    ],
)
def test_the_emulators_structured_answers_match_their_schema(schema):
    for prompt in ("a", "b", "a longer prompt"):
        value = runners.json_value(schema, prompt)
        jsonschema.validate(value, schema)
        assert runners.json_value(schema, prompt) == value  # deterministic
