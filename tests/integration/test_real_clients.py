"""
Clients nobody here wrote against the emulator's data plane: the real huggingface_hub InferenceClient
(sync and async) streams text and chat as TGI frames it and reads ``details.tokens``; the real openai
client (sync and async) lists models, completes and streams on the OpenAI-compatible routes. A stream that came back empty, or a shape the
client cannot read, fails here.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from huggingface_hub import AsyncInferenceClient, InferenceClient
from openai import AsyncOpenAI, OpenAI

from airflow_provider_hfep.emulator import Emulator, runners

from tests.helpers import wait_until

pytestmark = pytest.mark.integration

PROMPT = "The nightly batch"


@pytest.fixture
def endpoint_url(cloud) -> str:
    cloud.seed_endpoint("gen")  # running, TGI-like, task text-generation
    return cloud.endpoint_url("gen")


@pytest.mark.huggingface_hub
def test_text_generation_streams_token_by_token(cloud, endpoint_url):
    client = InferenceClient(base_url=endpoint_url, token=cloud.token)
    pieces = list(client.text_generation(PROMPT, max_new_tokens=6, stream=True))
    expected = runners.generate_text(PROMPT, 6)
    assert len(pieces) == 6
    assert "".join(pieces) == expected == client.text_generation(PROMPT, max_new_tokens=6)
    events = list(client.text_generation(PROMPT, max_new_tokens=6, stream=True, details=True))
    assert [e.token.text for e in events] == pieces
    assert events[-1].generated_text == expected
    assert events[-1].details.generated_tokens == 6
    assert all(e.generated_text is None for e in events[:-1])


@pytest.mark.huggingface_hub
def test_details_carry_the_tokens(cloud, endpoint_url):
    client = InferenceClient(base_url=endpoint_url, token=cloud.token)
    answer = client.text_generation(PROMPT, max_new_tokens=5, details=True)
    assert "".join(token.text for token in answer.details.tokens) == answer.generated_text
    assert answer.details.generated_tokens == len(answer.details.tokens) == 5
    assert all(token.logprob < 0 and not token.special for token in answer.details.tokens)


@pytest.mark.huggingface_hub
def test_chat_completion_streams_chunks(cloud, endpoint_url):
    client = InferenceClient(base_url=endpoint_url, token=cloud.token)
    messages = [{"role": "user", "content": "Hello"}]
    whole = client.chat_completion(messages, max_tokens=7).choices[0].message.content
    chunks = list(client.chat_completion(messages, max_tokens=7, stream=True))
    assert len(chunks) == 7
    assert "".join(c.choices[0].delta.content for c in chunks) == whole
    assert [c.choices[0].finish_reason for c in chunks] == [None] * 6 + ["length"]
    with_usage = list(
        client.chat_completion(messages, max_tokens=7, stream=True, stream_options={"include_usage": True})
    )
    assert with_usage[-1].usage.completion_tokens == 7


@pytest.mark.huggingface_hub
def test_the_async_client_streams_too(cloud, endpoint_url):
    async def main() -> tuple[str, str]:
        client = AsyncInferenceClient(base_url=endpoint_url, token=cloud.token)
        text = "".join([piece async for piece in await client.text_generation(PROMPT, stream=True)])
        stream = await client.chat_completion([{"role": "user", "content": "Hi"}], stream=True)
        chat = "".join([chunk.choices[0].delta.content async for chunk in stream])
        return text, chat

    text, chat = asyncio.run(main())
    assert text == runners.generate_text(PROMPT, 20)
    assert chat == runners.generate_text("Hi", 20).strip()


def test_tgi_generate_stream_route_and_openai_routes(cloud, endpoint_url):
    headers = {"authorization": f"Bearer {cloud.token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        with http.stream(
            "POST",
            f"{endpoint_url}/generate_stream",
            json={"inputs": PROMPT, "parameters": {"max_new_tokens": 3}},
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            frames = [line for line in response.iter_lines() if line]
        assert len(frames) == 3
        assert all(frame.startswith("data:{") for frame in frames)
        completion = http.post(f"{endpoint_url}/v1/completions", json={"prompt": ["a", "b"], "max_tokens": 4})
        assert [c["text"] for c in completion.json()["choices"]] == [
            runners.generate_text("a", 4),
            runners.generate_text("b", 4),
        ]
        with http.stream(
            "POST", f"{endpoint_url}/v1/completions", json={"prompt": "a", "max_tokens": 4, "stream": True}
        ) as response:
            frames = [line for line in response.iter_lines() if line]
        assert frames[-1] == "data: [DONE]"
        assert len(frames) == 5
        models = http.get(f"{endpoint_url}/v1/models").json()
        assert [m["id"] for m in models["data"]] == [cloud.endpoint("gen")["model"]["repository"]]
        info = http.get(f"{endpoint_url}/info").json()
        assert info["model_id"] == models["data"][0]["id"]
        assert info["router"] == "text-generation-router"


def test_a_stream_holds_its_capacity_slot_until_the_client_leaves():
    """A client that goes away mid-stream (a killed worker) must not leak the endpoint's capacity."""
    # each stream takes 120 s in all: still running when its client hangs up after one frame, and
    # still running when the wait below gives up if the hang-up went unnoticed
    with Emulator(latency_ms=120_000, capacity=2) as cloud:
        cloud.seed_endpoint("gen")
        url = cloud.endpoint_url("gen")
        body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 64}}
        with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=30) as http:
            for _ in range(2):
                with http.stream("POST", f"{url}/generate_stream", json=body) as response:
                    lines = response.iter_lines()  # kept: a dropped iterator closes the response
                    assert next(lines).startswith("data:{")
                    assert cloud.load("gen")["in_flight"] >= 1  # held while it streams
            # the emulator notices each hang-up and frees its slot
            wait_until(lambda: cloud.load("gen")["in_flight"] == 0, "the abandoned streams' slots", limit=20)
            assert cloud.load("gen") == {"in_flight": 0, "capacity": 2, "replicas": 1}


def test_a_stream_whose_answer_a_fault_loses_gives_its_slot_back(cloud, endpoint_url):
    cloud.set_faults([{"scope": "inference", "kind": "reset", "phase": "after", "count": 1}])
    with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
        with pytest.raises(httpx.TransportError):  # processed, then the connection dropped
            http.post(f"{endpoint_url}/generate_stream", json={"inputs": PROMPT})
        assert cloud.load("gen")["in_flight"] == 0
        assert http.post(f"{endpoint_url}/generate_stream", json={"inputs": PROMPT}).status_code == 200


def test_a_request_abandoned_mid_answer_frees_its_slot():
    """A killed worker's plain requests: each slot is freed when its answer would have been sent."""
    with Emulator(latency_ms=1500, capacity=2) as cloud:
        cloud.seed_endpoint("gen")
        url = cloud.endpoint_url("gen")
        with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=0.2) as http:
            for index in range(2):  # as many abandoned requests as it has slots
                with pytest.raises(httpx.TimeoutException):
                    http.post(url, json={"inputs": f"abandoned {index}"})
        wait_until(lambda: cloud.load("gen")["in_flight"] == 0, "the abandoned requests' slots")
        with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
            assert http.post(url, json={"inputs": "after"}).status_code == 200


def test_the_openai_client_lists_models_completes_and_streams(cloud, endpoint_url):
    client = OpenAI(base_url=f"{endpoint_url}/v1", api_key=cloud.token, max_retries=0)
    (model,) = client.models.list().data
    assert model.id == cloud.endpoint("gen")["model"]["repository"]
    completion = client.completions.create(model=model.id, prompt=PROMPT, max_tokens=5)
    assert completion.choices[0].text == runners.generate_text(PROMPT, 5)
    assert completion.usage.completion_tokens == 5
    streamed = client.completions.create(model=model.id, prompt=PROMPT, max_tokens=5, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == completion.choices[0].text
    messages = [{"role": "user", "content": "Hello"}]
    whole = client.chat.completions.create(model=model.id, messages=messages, max_tokens=6)
    chunks = list(
        client.chat.completions.create(
            model=model.id,
            messages=messages,
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert (
        "".join(c.choices[0].delta.content for c in chunks if c.choices) == whole.choices[0].message.content
    )
    assert chunks[-1].usage.completion_tokens == 6

    async def main() -> str:
        async_client = AsyncOpenAI(base_url=f"{endpoint_url}/v1", api_key=cloud.token, max_retries=0)
        stream = await async_client.chat.completions.create(
            model=model.id, messages=messages, max_tokens=6, stream=True
        )
        return "".join([chunk.choices[0].delta.content async for chunk in stream])

    assert asyncio.run(main()) == whole.choices[0].message.content
