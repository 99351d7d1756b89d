"""
OpenAI Batch files through the inference operator, and structured output, against the emulator.

The input lines' bodies are checked with the ``openai`` library's own request types (it has none for
the line around them: that is written from the format's description, its urls checked against the
endpoints openai's ``BatchCreateParams`` names); the output lines are read with its response types
(``ChatCompletion``, ``Completion``, ``CreateEmbeddingResponse``, ``BatchError``), so code that reads
OpenAI batch results reads ours.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import typing
from collections import Counter
from pathlib import Path

import pytest
from openai.types import (
    BatchCreateParams,
    BatchError,
    Completion,
    CreateEmbeddingResponse,
    EmbeddingCreateParams,
    completion_create_params as completion_params,
)
from openai.types.chat import ChatCompletion, ParsedChatCompletion, completion_create_params as chat_params
from pydantic import TypeAdapter

from airflow_provider_hfep.emulator import Emulator, runners
from airflow_provider_hfep.endpoints import EndpointsError, InvalidEndpointArgumentError

from tests.helpers import wait_until
from tests.integration.batch_child import run
from tests.integration.test_engines import IMAGES

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CHAT, COMPLETIONS, EMBEDDINGS = "/v1/chat/completions", "/v1/completions", "/v1/embeddings"
#: the body type openai's client sends on each route, and the answer type it reads
REQUEST_TYPES = {
    CHAT: TypeAdapter(chat_params.CompletionCreateParamsNonStreaming),
    COMPLETIONS: TypeAdapter(completion_params.CompletionCreateParamsNonStreaming),
    EMBEDDINGS: TypeAdapter(EmbeddingCreateParams),
}
ANSWER_TYPES = {CHAT: ChatCompletion, COMPLETIONS: Completion, EMBEDDINGS: CreateEmbeddingResponse}
SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "population": {"type": "integer", "minimum": 0, "maximum": 1000},
        "capital": {"type": "boolean"},
    },
    "required": ["city", "population", "capital"],
    "additionalProperties": False,
}


def request_line(custom_id: str, url: str, text: str, **extra) -> dict:
    """One input line; its body written as openai's request type for the route (and checked by it)."""
    if url == CHAT:
        body: dict = chat_params.CompletionCreateParamsNonStreaming(
            model="gpt-4o-mini", messages=[{"role": "user", "content": text}], max_tokens=5, **extra
        )
    elif url == COMPLETIONS:
        body = completion_params.CompletionCreateParamsNonStreaming(
            model="gpt-3.5-turbo-instruct", prompt=text, max_tokens=4, **extra
        )
    else:
        body = EmbeddingCreateParams(model="text-embedding-3-small", input=text, **extra)
    REQUEST_TYPES[url].validate_python(body)
    assert url in typing.get_args(typing.get_type_hints(BatchCreateParams)["endpoint"])
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


ID_PREFIXES = {CHAT: "chat", COMPLETIONS: "completion", EMBEDDINGS: "embedding"}


def lines_of(routes: dict[str, int]) -> list[dict]:
    return [
        request_line(f"{ID_PREFIXES[url]}-{i}", url, f"{url} question {i}")
        for url, count in routes.items()
        for i in range(count)
    ]


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def expected_answer(line: dict) -> object:
    """What the emulated model answers a line (its runners are deterministic): the part a test checks."""
    body = line["body"]
    if line["url"] == CHAT:
        return runners.generate_text(body["messages"][0]["content"], body["max_tokens"]).strip()
    if line["url"] == COMPLETIONS:
        return runners.generate_text(body["prompt"], body["max_tokens"])
    return runners.embed(body["input"])


def answer_of(url: str, parsed) -> object:
    """Read the answer from openai's own answer type, as a user's code would."""
    if url == CHAT:
        return parsed.choices[0].message.content
    if url == COMPLETIONS:
        return parsed.choices[0].text
    return parsed.data[0].embedding


def check_output(results: list[dict], lines: list[dict]) -> None:
    """Each line has exactly one result, read with openai's types, the answer its emulated model gives."""
    assert Counter(result["custom_id"] for result in results) == Counter(line["custom_id"] for line in lines)
    by_id = {line["custom_id"]: line for line in lines}
    for result in results:
        line = by_id[result["custom_id"]]
        assert result["error"] is None, result
        assert result["id"].startswith("batch_req_")
        assert result["response"]["status_code"] == 200
        assert isinstance(result["response"]["request_id"], str)
        parsed = ANSWER_TYPES[line["url"]].model_validate(result["response"]["body"])
        assert answer_of(line["url"], parsed) == expected_answer(line)


#: the user's own server: it takes every engine's routes
CUSTOM_IMAGE = {"custom": {"url": "registry.example/our-server:1", "healthRoute": "/health", "port": 80}}


def seed(cloud, name: str, kind: str, task: str = "text-generation") -> None:
    image = CUSTOM_IMAGE if kind == "custom" else IMAGES[kind]
    cloud.seed_endpoint(
        name, model={"repository": f"org/{kind}-model", "framework": "pytorch", "task": task, "image": image}
    )


#: what each engine serves of the three routes (TEI: embeddings only; TGI: no embeddings; the user's
#: own container: all three, so a mixed file runs there)
ROUND_TRIPS = {
    "tgi": ("text-generation", {CHAT: 6, COMPLETIONS: 5}),
    "tei": ("feature-extraction", {EMBEDDINGS: 7}),
    "vLLM": ("text-generation", {CHAT: 6, COMPLETIONS: 5}),
    "custom": ("text-generation", {CHAT: 4, COMPLETIONS: 3, EMBEDDINGS: 4}),
}


@pytest.mark.parametrize("kind", list(ROUND_TRIPS))
def test_an_openai_batch_file_round_trips(cloud, tmp_path, kind):
    task, routes = ROUND_TRIPS[kind]
    seed(cloud, "ep", kind, task)
    lines = lines_of(routes)
    source = write_jsonl(tmp_path / "batch.jsonl", lines)
    out = tmp_path / "results.jsonl"
    # no task, no input_format: the lines say what they are
    result, xcom = run(endpoint_name="ep", input_path=str(source), output_path=str(out))
    assert result["summary"]["count"] == len(lines)
    check_output(read_jsonl(out), lines)
    sent = cloud.requests("inference")
    unsent = [(line["url"], {k: v for k, v in line["body"].items() if k != "model"}) for line in lines]
    for request in sent:
        body = dict(request["json"])
        route = request["path"].removeprefix("/endpoints/demo/ep")
        REQUEST_TYPES[route].validate_python(body)  # still a body openai's client could send
        # the endpoint's name for its model, not OpenAI's (TGI answers to any; huggingface_hub's names
        # on the user's own server)
        assert body.pop("model") == SERVED_NAMES[kind, route]
        if route != EMBEDDINGS:
            assert body.pop("stream") is False
        unsent.remove((route, body))  # the line's body as it was written, each once
    assert unsent == []


SERVED_NAMES = {
    **{("tgi", route): "tgi" for route in (CHAT, COMPLETIONS)},
    **{("vLLM", route): "org/vLLM-model" for route in (CHAT, COMPLETIONS)},
    ("tei", EMBEDDINGS): "org/tei-model",
    ("custom", CHAT): "tgi",
    ("custom", COMPLETIONS): "tgi",
    ("custom", EMBEDDINGS): "tei",
}


def test_an_openai_batch_file_with_a_schema_through_dag_test(cloud, tmp_path, run_dag):
    seed(cloud, "gen", "vLLM")
    lines = lines_of({CHAT: 3, COMPLETIONS: 2})
    write_jsonl(tmp_path / "batch.jsonl", lines)
    run_ = run_dag("hfep_inference_openai_batch", conf={"dir": str(tmp_path)})
    assert run_.state == "success"
    assert run_.returns["infer"]["summary"]["invalid_output"] == 0
    results = read_jsonl(tmp_path / "results.jsonl")
    assert sorted(r["custom_id"] for r in results) == sorted(line["custom_id"] for line in lines)
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    by_id = {line["custom_id"]: line for line in lines}
    for result in results:
        line = by_id[result["custom_id"]]
        if line["url"] == CHAT:
            parsed = ParsedChatCompletion[dict].model_validate(result["response"]["body"])
            prompt, value = line["body"]["messages"][0]["content"], parsed.choices[0].message.parsed
        else:
            parsed = Completion.model_validate(result["response"]["body"])
            prompt, value = line["body"]["prompt"], result["response"]["body"]["choices"][0]["parsed"]
            assert json.loads(parsed.choices[0].text) == value
        assert value == runners.json_value(schema, prompt)


def test_a_model_the_server_lists_is_kept_and_results_go_to_xcom(cloud):
    seed(cloud, "ep", "vLLM")
    lines = [request_line("listed", CHAT, "hello"), request_line("other", CHAT, "world")]
    lines[0]["body"]["model"] = "org/vLLM-model"  # what its /v1/models lists
    results, _ = run(endpoint_name="ep", inputs=lines, input_format="openai-batch", task="chat-completion")
    assert [result["custom_id"] for result in results] == ["listed", "other"]  # input order
    check_output(results, lines)
    assert [r["json"]["model"] for r in cloud.requests("inference")] == ["org/vLLM-model"] * 2


@pytest.mark.parametrize(
    ("kind", "task", "refused"), [("tgi", "text-generation", EMBEDDINGS), ("tei", "feature-extraction", CHAT)]
)
def test_a_mixed_file_is_refused_where_the_engine_serves_one_kind_of_line(
    cloud, tmp_path, kind, task, refused
):
    seed(cloud, "ep", kind, task)
    lines = lines_of({CHAT: 2, EMBEDDINGS: 2})
    source = write_jsonl(tmp_path / "batch.jsonl", lines)
    with pytest.raises(InvalidEndpointArgumentError) as error:
        run(endpoint_name="ep", input_path=str(source), output_path=str(tmp_path / "out.jsonl"))
    first = next(i for i, line in enumerate(lines) if line["url"] == refused)
    assert error.value.field == "input_path"
    assert f"request {first + 1} (custom_id {lines[first]['custom_id']!r}) asks for {refused}" in str(
        error.value
    )
    assert cloud.requests("inference") == []


def test_an_embeddings_line_on_a_generating_vllm_model_is_refused_naming_the_model(cloud):
    seed(cloud, "ep", "vLLM")
    with pytest.raises(InvalidEndpointArgumentError, match="needs a embedding model"):
        run(endpoint_name="ep", inputs=lines_of({CHAT: 1, EMBEDDINGS: 1}))
    assert cloud.requests("inference") == []


@pytest.mark.parametrize(
    ("change", "task", "field", "message"),
    [
        (
            lambda lines: lines[2].update(custom_id="chat-0"),
            None,
            "inputs",
            "request 3 (custom_id 'chat-0') repeats the custom_id of request 1",
        ),
        (
            lambda lines: lines[1].update(url="/v1/responses"),
            None,
            "inputs",
            "request 2 (custom_id 'chat-1') asks for '/v1/responses'",
        ),
        (lambda lines: lines[1].update(method="GET"), None, "inputs", "has method 'GET'"),
        (lambda lines: lines[1]["body"].pop("messages"), None, "inputs", "has no messages in its body"),
        (lambda lines: lines[1]["body"].update(stream=True), None, "inputs", "asks to stream"),
        (
            lambda lines: lines[1]["body"].update(response_format={"type": "xml"}),
            None,
            "inputs: request 2 body.response_format",
            "not an OpenAI response_format",
        ),
        (
            lambda lines: lines.append("a plain job"),
            None,
            "inputs",
            "request 4 is not an OpenAI batch request",
        ),
        (lambda lines: None, "embeddings", "task", "'embeddings' does not agree with request 1"),
    ],
    ids=["duplicate", "route", "method", "body", "stream", "format", "mixed-formats", "task"],
)
def test_bad_lines_are_refused_before_any_request(cloud, change, task, field, message):
    seed(cloud, "ep", "vLLM")
    lines = lines_of({CHAT: 3})
    change(lines)
    with pytest.raises(InvalidEndpointArgumentError) as error:
        run(endpoint_name="ep", inputs=lines, task=task)
    assert error.value.field == field
    assert message in str(error.value)
    assert cloud.requests("inference") == []


def test_without_task_plain_jobs_are_refused(cloud):
    seed(cloud, "ep", "tgi")
    with pytest.raises(InvalidEndpointArgumentError, match="task: is needed"):
        run(endpoint_name="ep", inputs=["a plain job"])


# -- a killed task resumes per custom_id -----------------------------------------------------------


@pytest.fixture(scope="module")
def slow_cloud():
    """A data plane slow enough (20 ms a request) to catch a 2,000-line batch half-way."""
    with Emulator(latency_ms=20) as emulator:
        yield emulator


def test_a_killed_batch_resumes_per_custom_id(slow_cloud, tmp_path, monkeypatch):
    total, piece, concurrency = 2000, 100, 16
    cloud = slow_cloud
    cloud.reset()
    seed(cloud, "ep", "vLLM")
    lines = lines_of({CHAT: total // 2, COMPLETIONS: total // 2})
    source = write_jsonl(tmp_path / "batch.jsonl", lines)
    out = tmp_path / "results.jsonl"
    arguments = {
        "endpoint_name": "ep",
        "input_path": str(source),
        "output_path": str(out),
        "commit_max_results": piece,
        "max_concurrency": concurrency,
    }
    monkeypatch.setenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", cloud.airflow_connection())
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.batch_child", json.dumps(arguments)],
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )

    def half_answered() -> bool:
        assert child.poll() is None, "the batch ended before it was killed"
        return cloud.billing("ep")["requests"] >= total // 2

    try:
        wait_until(half_answered, "half the lines answered", limit=240, every=0.01)
        os.killpg(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    key = {CHAT: lambda body: body["messages"][0]["content"], COMPLETIONS: lambda body: body["prompt"]}

    def asked(request) -> str:
        return key[request["path"].removeprefix("/endpoints/demo/ep")](request["json"])

    answered = {asked(r) for r in cloud.requests("inference") if r["status"] == 200}
    committed = [
        result["custom_id"]
        for piece_file in sorted(Path(f"{out}.parts").glob("part-*.jsonl"))
        for result in read_jsonl(piece_file)
    ]
    assert committed
    assert len(committed) < total
    assert not out.exists()
    cloud.clear_requests()
    result, _ = run(try_number=2, **arguments)
    resent = [asked(r) for r in cloud.requests("inference")]
    by_id = {line["custom_id"]: line for line in lines}
    assert result["summary"]["reused"] == len(set(committed))
    assert sorted(resent) == sorted(  # every line without a committed result, once
        key[line["url"]](line["body"]) for line in lines if line["custom_id"] not in set(committed)
    )
    assert sum(1 for prompt in resent if prompt in answered) <= piece + concurrency  # paid twice at most
    final = read_jsonl(out)
    check_output(final, lines)  # each custom_id exactly once, with its own answer
    assert {r["custom_id"] for r in final} == set(by_id)


# -- structured output -----------------------------------------------------------------------------


def test_structured_output_is_spelled_for_each_engine_and_stored_parsed(cloud, tmp_path):
    seed(cloud, "tgi", "tgi")
    seed(cloud, "vllm", "vLLM")
    lines = [request_line(f"c{i}", CHAT, f"city {i}") for i in range(3)]
    for endpoint, spelled in (("tgi", "grammar"), ("vllm", "openai")):
        cloud.clear_requests()
        results, xcom = run(endpoint_name=endpoint, inputs=lines, output_schema=SCHEMA)
        sent = cloud.requests("inference")[0]["json"]["response_format"]
        if spelled == "grammar":  # TGI: its grammar on the chat route
            assert sent == {"type": "json_object", "value": SCHEMA}
        else:
            assert sent == {"type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
        for result, line in zip(results, lines):
            parsed = ParsedChatCompletion[dict].model_validate(result["response"]["body"])
            message = parsed.choices[0].message
            assert message.parsed == runners.json_value(SCHEMA, line["body"]["messages"][0]["content"])
            assert json.loads(message.content) == message.parsed
        assert xcom["summary"]["invalid_output"] == 0
    # the provider's own jobs: TGI's POST / takes it as parameters.grammar; the result is the dict
    cloud.clear_requests()
    results, _ = run(
        endpoint_name="tgi", task="text-generation", inputs=["town a", "town b"], output_schema=SCHEMA
    )
    assert results == [runners.json_value(SCHEMA, "town a"), runners.json_value(SCHEMA, "town b")]
    assert cloud.requests("inference")[0]["json"]["parameters"]["grammar"] == {
        "type": "json",
        "value": SCHEMA,
    }


def test_an_invalid_answer_is_asked_again_then_kept_as_valid(cloud):
    seed(cloud, "ep", "vLLM")
    cloud.set_faults([{"scope": "inference", "kind": "invalid_output", "count": 1}])
    results, xcom = run(
        endpoint_name="ep",
        task="chat-completion",
        inputs=[[{"role": "user", "content": "x"}]],
        output_schema=SCHEMA,
    )
    assert results == [runners.json_value(SCHEMA, "x")]
    assert len(cloud.requests("inference")) == 2  # the invalid answer, then the valid one
    assert xcom["summary"]["invalid_output"] == 0
    assert xcom["summary"]["retries"] == 1


def test_answers_invalid_to_the_end_fail_the_task_after_the_retries(cloud):
    seed(cloud, "ep", "tgi")
    cloud.set_faults([{"scope": "inference", "kind": "invalid_output", "rate": 1.0}])
    lines = [request_line("spoiled", CHAT, "x")]
    with pytest.raises(EndpointsError, match="1 of 1 inputs failed.*invalid output: not JSON"):
        run(endpoint_name="ep", inputs=lines, output_schema=SCHEMA, invalid_output_retries=2)
    assert len(cloud.requests("inference")) == 3  # the request and its 2 retries, each answered 200
    assert all(r["status"] == 200 and r["fault"] == "invalid_output" for r in cloud.requests("inference"))


def test_invalid_output_in_both_formats(cloud, tmp_path):
    seed(cloud, "ep", "vLLM")
    cloud.set_faults([{"scope": "inference", "kind": "invalid_output", "rate": 1.0}])
    lines = [request_line("spoiled", CHAT, "x")]
    out = tmp_path / "results.jsonl"
    _, xcom = run(
        endpoint_name="ep", inputs=lines, output_schema=SCHEMA, on_item_error="record", output_path=str(out)
    )
    (line,) = read_jsonl(out)
    assert line["response"] is None
    error = BatchError.model_validate(line["error"])
    assert error.code == "invalid_output"
    assert "not JSON" in error.message
    assert xcom["summary"]["invalid_output"] == 1
    assert len(cloud.requests("inference")) == 2  # one retry by default
    results, xcom = run(
        endpoint_name="ep", task="completion", inputs=["y"], output_schema=SCHEMA, on_item_error="record"
    )
    assert results == [None]
    assert xcom["errors"][0]["kind"] == "invalid_output"
    assert xcom["summary"]["invalid_output"] == 1


@pytest.mark.parametrize(
    ("kind", "task", "arguments", "field"),
    [
        (
            "tei",
            "feature-extraction",
            {"inputs": [request_line("e", EMBEDDINGS, "x", encoding_format="float")]},
            None,
        ),
        (
            "tgi",
            "text-generation",
            {
                "task": "completion",
                "inputs": ["x"],
                "parameters": {"response_format": {"type": "json_object"}},
            },
            "parameters.response_format",
        ),
        (
            "tgi",
            "text-generation",
            {"inputs": [request_line("c", COMPLETIONS, "x", response_format={"type": "json_object"})]},
            "inputs",
        ),
        (
            "huggingface",
            "text-generation",
            {
                "task": "text-generation",
                "inputs": ["x"],
                "parameters": {"response_format": {"type": "json_object"}},
            },
            "parameters.response_format",
        ),
    ],
    ids=["tei-no-format-is-fine", "tgi-completions", "tgi-completion-line", "toolkit"],
)
def test_a_response_format_the_engine_cannot_honour_is_refused_before_any_request(
    cloud, kind, task, arguments, field
):
    seed(cloud, "ep", kind, task)
    if field is None:
        run(endpoint_name="ep", **arguments)  # no response_format asked: nothing to refuse
        return
    with pytest.raises(InvalidEndpointArgumentError) as error:
        run(endpoint_name="ep", **arguments)
    assert error.value.field == field
    assert "cannot constrain" in str(error.value)
    assert cloud.requests("inference") == []


def test_an_output_schema_that_is_no_schema_is_refused_when_the_dag_is_parsed():
    with pytest.raises(InvalidEndpointArgumentError, match="output_schema: is not a valid JSON Schema"):
        run(endpoint_name="ep", task="chat-completion", inputs=[], output_schema={"type": "objekt"})
    with pytest.raises(InvalidEndpointArgumentError, match="output_schema: checks generated text"):
        run(endpoint_name="ep", task="embeddings", inputs=[], output_schema=SCHEMA)


def test_openais_own_parse_reads_the_emulators_structured_answers(cloud):
    """openai's client sends its strict json_schema spelling and parses the answer into a model."""
    from openai import OpenAI
    from pydantic import BaseModel

    class City(BaseModel):
        city: str
        population: int
        capital: bool

    seed(cloud, "ep", "vLLM")
    client = OpenAI(base_url=f"{cloud.endpoint_url('ep')}/v1", api_key=cloud.token, max_retries=0)
    answer = client.chat.completions.parse(
        model="org/vLLM-model", messages=[{"role": "user", "content": "Lyon"}], response_format=City
    )
    schema = cloud.requests("inference")[0]["json"]["response_format"]["json_schema"]["schema"]
    assert answer.choices[0].message.parsed == City(**runners.json_value(schema, "Lyon"))
