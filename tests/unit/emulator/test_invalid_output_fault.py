"""The invalid_output fault: drawn only by requests asking for structured output, in scope inference only."""

from __future__ import annotations

import json

import pytest

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.faults import Fault, FaultPlan


def test_only_requests_asking_for_structured_output_draw_it():
    plan = FaultPlan([Fault("inference", "invalid_output", count=1)])
    assert plan.pick("inference", "POST", structured=False) is None  # not used up by a plain request
    assert plan.pick("inference", "POST", structured=True).kind == "invalid_output"
    assert plan.pick("inference", "POST", structured=True) is None  # its count is spent


def test_it_belongs_to_the_inference_scope():
    with pytest.raises(ValueError, match="only in scope inference"):
        Fault("management", "invalid_output")
    assert Fault.parse("inference:invalid_output:0.5").rate == 0.5


@pytest.mark.parametrize(
    ("body", "asks"),
    [
        ({"messages": [], "response_format": {"type": "json_object"}}, True),
        ({"messages": [], "response_format": {"type": "text"}}, False),
        ({"inputs": "x", "parameters": {"grammar": {"type": "json", "value": {}}}}, True),
        ({"inputs": "x", "parameters": {"max_new_tokens": 3}}, False),
        ("not an object", False),
    ],
)
def test_a_request_asks_for_structured_output_in_any_engines_spelling(body, asks):
    assert runners.asks_structure(body) is asks


def test_a_spoiled_answer_is_words_and_finishes_at_the_length():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    body = {"messages": [{"role": "user", "content": "q"}], "max_tokens": 3}
    valid = runners.chat_completion(body, schema)["choices"][0]
    assert valid["finish_reason"] == "stop"
    assert json.loads(valid["message"]["content"]) == runners.json_value(schema, "q")
    token = runners.SPOILED.set(True)
    try:
        spoiled = runners.chat_completion(body, schema)["choices"][0]
    finally:
        runners.SPOILED.reset(token)
    assert spoiled["finish_reason"] == "length"
    assert spoiled["message"]["content"] == runners.generate_text("q", 3).strip()
