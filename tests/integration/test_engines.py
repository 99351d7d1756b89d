"""
Each engine as its server serves it: the emulator answers an engine's own routes only (404 elsewhere,
as the real server would), and the inference operator picks each task's route from the endpoint's
image kind, giving the same result shape whatever the engine, or refuses the task before any
inference request.
"""

from __future__ import annotations

import httpx
import pytest

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError

from tests.integration.batch_child import run

pytestmark = pytest.mark.integration

IMAGES = {
    "tgi": {"tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3.4"}},
    "tei": {"tei": {"url": "ghcr.io/huggingface/text-embeddings-inference:1.8"}},
    "vLLM": {"vLLM": {"url": "vllm/vllm-openai:v0.11.0"}},
    "sGLang": {"sGLang": {"url": "lmsysorg/sglang:v0.5.0"}},
    "llamacpp": {
        "llamacpp": {
            "url": "ghcr.io/ggml-org/llama.cpp:server",
            "ctxSize": 4096,
            "modelPath": "/repository/model.gguf",
            "nParallel": 4,
            "threadsHttp": 4,
        }
    },
    "huggingface": {"huggingface": {}},
}


def seed(cloud, name: str, kind: str, task: str = "text-generation") -> None:
    cloud.seed_endpoint(
        name,
        model={
            "repository": f"org/{kind}-model",
            "framework": "pytorch",
            "task": task,
            "image": IMAGES[kind],
        },
    )


@pytest.mark.parametrize(
    ("kind", "served", "not_served"),
    [
        ("tgi", ["/generate", "/v1/completions", "/v1/chat/completions"], ["/embed", "/v1/embeddings"]),
        ("tei", ["/embed", "/predict", "/v1/embeddings", "/rerank"], ["/generate", "/v1/chat/completions"]),
        ("vLLM", ["/v1/completions", "/v1/chat/completions", "/v1/embeddings"], ["/", "/generate", "/embed"]),
        ("huggingface", ["/"], ["/v1/chat/completions", "/generate_stream", "/embed"]),
    ],
)
def test_each_engine_serves_its_own_routes_only(cloud, kind, served, not_served):
    seed(cloud, "eng", kind, "feature-extraction" if kind == "tei" else "text-generation")
    url = cloud.endpoint_url("eng")
    bodies = {
        "/v1/completions": {"prompt": "a"},
        "/v1/chat/completions": {"messages": [{"role": "user", "content": "a"}]},
        "/v1/embeddings": {"input": "a"},
        "/rerank": {"query": "a", "texts": ["b", "c"]},
    }
    with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
        for path in served:
            response = http.post(url + path, json=bodies.get(path, {"inputs": "a"}))
            assert response.status_code == 200, (kind, path, response.text)
        for path in not_served:
            assert http.post(url + path, json={"inputs": "a"}).status_code == 404, (kind, path)


def test_tei_refuses_more_inputs_than_its_max_client_batch_size(cloud):
    seed(cloud, "emb", "tei", "feature-extraction")
    url = cloud.endpoint_url("emb")
    with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
        ok = http.post(f"{url}/embed", json={"inputs": [f"t{i}" for i in range(32)]})
        assert ok.status_code == 200
        assert ok.json() == [runners.embed(f"t{i}") for i in range(32)]
        too_many = http.post(f"{url}/embed", json={"inputs": [f"t{i}" for i in range(33)]})
        assert too_many.status_code == 413
        assert "maximum allowed batch size 32" in too_many.json()["error"]


PROMPTS = ["first prompt", "second prompt"]
TEXTS = ["a sentence", "another one"]


@pytest.mark.parametrize(
    ("kind", "task", "jobs", "expected"),
    [
        ("tgi", "text-generation", PROMPTS, [runners.generate_text(p, 8) for p in PROMPTS]),
        ("tgi", "completion", PROMPTS, [runners.generate_text(p, 8) for p in PROMPTS]),
        ("vLLM", "text-generation", PROMPTS, [runners.generate_text(p, 8) for p in PROMPTS]),
        ("sGLang", "completion", PROMPTS, [runners.generate_text(p, 8) for p in PROMPTS]),
        ("llamacpp", "text-generation", PROMPTS, [runners.generate_text(p, 8) for p in PROMPTS]),
        ("tei", "feature-extraction", TEXTS, [runners.embed(t) for t in TEXTS]),
        ("tei", "embeddings", TEXTS, [runners.embed(t) for t in TEXTS]),
        ("vLLM", "feature-extraction", TEXTS, [runners.embed(t) for t in TEXTS]),
        ("vLLM", "embeddings", TEXTS, [runners.embed(t) for t in TEXTS]),
        ("tei", "text-classification", TEXTS, [runners.classify(t) for t in TEXTS]),
    ],
)
def test_a_task_gives_the_same_result_whatever_the_engine(cloud, kind, task, jobs, expected):
    model_task = "feature-extraction" if task in ("feature-extraction", "embeddings") else task
    model_task = "text-generation" if task == "completion" else model_task
    seed(cloud, "gen", kind, model_task)
    parameters = {"max_new_tokens": 8} if task in ("text-generation", "completion") else None
    results, _ = run(task=task, inputs=jobs, parameters=parameters)
    assert results == expected


@pytest.mark.parametrize(
    ("kind", "task", "engine"),
    [
        ("vLLM", "summarization", "vLLM"),
        ("tei", "text-generation", "TEI"),
        ("tgi", "feature-extraction", "TGI"),
        ("huggingface", "chat-completion", "inference toolkit"),
    ],
)
def test_a_task_the_engine_does_not_serve_is_refused_before_any_inference_request(cloud, kind, task, engine):
    seed(cloud, "gen", kind)
    jobs = [[{"role": "user", "content": "hi"}]] if task == "chat-completion" else ["hi"]
    with pytest.raises(
        InvalidEndpointArgumentError, match=rf"task: .* runs {engine} .* Fix: use one of"
    ) as refused:
        run(task=task, inputs=jobs)
    assert task in str(refused.value)
    assert cloud.requests("inference") == []


def test_tei_classifies_a_batch_sent_as_it_reads_one(cloud):
    """TEI reads a flat list as one sentence pair (3 or more: 422): a batch is a list of one-text lists."""
    seed(cloud, "cls", "tei", "text-classification")
    url = cloud.endpoint_url("cls")
    with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
        assert http.post(f"{url}/predict", json={"inputs": ["a", "b", "c"]}).status_code == 422
        pair = http.post(f"{url}/predict", json={"inputs": ["a", "b"]}).json()
        assert pair == runners.classify("a\x00b")  # one pair, one answer
    texts = [f"review {i}" for i in range(5)]
    cloud.clear_requests()
    results, _ = run(task="text-classification", inputs=texts, endpoint_name="cls")
    assert results == [runners.classify(t) for t in texts]
    (sent,) = cloud.requests("inference")
    assert sent["json"]["inputs"] == [[t] for t in texts]


def test_one_input_too_long_is_its_own_error_and_does_not_shrink_the_batches(cloud):
    seed(cloud, "emb", "tei", "feature-extraction")
    texts = [f"document {i}" for i in range(96)]
    texts[5] = "word " * 600  # more than TEI's 512 tokens: 413, about that input
    results, xcom = run(
        task="feature-extraction",
        inputs=texts,
        on_item_error="record",
        max_concurrency=1,
        endpoint_name="emb",
    )
    assert results[5] is None
    assert [e["index"] for e in xcom["errors"]] == [5]
    assert "must have less than 512 tokens" in xcom["errors"][0]["error"]
    assert results[:5] + results[6:] == [runners.embed(t) for i, t in enumerate(texts) if i != 5]
    later = [
        len(r["json"]["inputs"])
        for r in cloud.requests("inference")
        if r["json"]["inputs"][0] == "document 32"
    ]
    assert later == [32]  # the groups after it still carry 32


def test_a_server_error_on_a_group_is_every_inputs_error_without_splitting(cloud):
    seed(cloud, "emb", "tei", "feature-extraction")
    cloud.set_faults([{"scope": "inference", "kind": "500", "rate": 1.0}])
    results, xcom = run(
        task="feature-extraction",
        inputs=[f"t{i}" for i in range(40)],
        on_item_error="record",
        endpoint_name="emb",
    )
    assert results == [None] * 40
    assert len(xcom["errors"]) == 40
    assert (
        len(cloud.requests("inference")) == 2
    )  # a group of 32 and one of 8: no halves sent to a broken server


@pytest.mark.parametrize(
    ("kind", "model_task", "task", "needs"),
    [
        ("tei", "feature-extraction", "text-classification", "classification"),
        ("vLLM", "text-generation", "embeddings", "embedding"),
        ("huggingface", "summarization", "text-generation", "generative"),
    ],
)
def test_a_task_the_endpoints_model_cannot_do_is_refused_before_any_inference_request(
    cloud, kind, model_task, task, needs
):
    seed(cloud, "gen", kind, model_task)
    with pytest.raises(
        InvalidEndpointArgumentError, match=rf"needs a {needs} model.* serves a {model_task} model"
    ):
        run(task=task, inputs=["hi"])
    assert cloud.requests("inference") == []


def test_raw_is_refused_on_the_openai_only_engines(cloud):
    seed(cloud, "gen", "vLLM")
    with pytest.raises(
        InvalidEndpointArgumentError, match="'raw' is not served by endpoint gen, which runs vLLM"
    ):
        run(task="raw", inputs=[{"prompt": "x"}])
    assert cloud.requests("inference") == []


def test_the_openai_model_name_is_the_one_the_server_lists(cloud):
    seed(cloud, "gen", "vLLM")
    results, _ = run(
        task="text-generation", inputs=["p"], parameters={"max_new_tokens": 4, "return_full_text": True}
    )
    assert results == ["p" + runners.generate_text("p", 4)]  # return_full_text sent as echo
    listed = cloud.api("GET", "/endpoints/demo/gen/v1/models").json()["data"][0]["id"]
    (sent,) = [r for r in cloud.requests("inference") if r["method"] == "POST"]
    assert sent["json"]["model"] == listed
    assert sent["json"]["echo"] is True
