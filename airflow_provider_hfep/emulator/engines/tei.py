"""
TEI (text-embeddings-inference): ``/embed``, ``/predict``, ``/rerank``, OpenAI ``/v1/embeddings``, ``POST /``.

TEI refuses (413) a request carrying more inputs than its ``max_client_batch_size``, or one input
longer than it takes, before answering it.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.engines import PIPELINE, Engine, Route, Served, get, post

#: the longest input a TEI endpoint takes, in tokens (words, here): 413 beyond, as TEI answers
TEI_MAX_INPUT_TOKENS = 512


def check_batch(body: Any, limit: int) -> None:
    """Refuse, as TEI does (413), more inputs than its max_client_batch_size, or an input too long."""
    count = runners.input_count(body)
    if count > limit:
        raise runners.TooLarge(f"batch size {count} > maximum allowed batch size {limit}")
    inputs = body.get("inputs", body.get("input")) if isinstance(body, dict) else None
    for text in inputs if isinstance(inputs, list) else [inputs]:
        words = len(text.split()) if isinstance(text, str) else 0
        if words > TEI_MAX_INPUT_TOKENS:
            raise runners.TooLarge(
                f"Input validation error: `inputs` must have less than {TEI_MAX_INPUT_TOKENS} tokens. "
                f"Given: {words}"
            )


def rerank(body: Any) -> list[dict[str, Any]]:
    """TEI ``/rerank``: each text's relevance to the query, most relevant first."""
    query, texts = (body.get("query"), body.get("texts")) if isinstance(body, dict) else (None, None)
    if (
        not isinstance(query, str)
        or not isinstance(texts, list)
        or not all(isinstance(t, str) for t in texts)
    ):
        raise runners.BadInput("'query' must be a string and 'texts' a list of strings")
    scores = [{"index": i, "score": runners.relevance(query, t)} for i, t in enumerate(texts)]
    return sorted(scores, key=lambda item: item["score"], reverse=True)


#: tokens TEI batches together by default (its ``--max-batch-tokens``)
TEI_MAX_BATCH_TOKENS = 16384


def info(served: Served) -> dict[str, Any]:
    """TEI's ``GET /info``: the model, and the limits of this replica's router."""
    classifier = served.task == "text-classification"
    model_type = (
        {
            "classifier": {
                "id2label": {"0": "NEGATIVE", "1": "POSITIVE"},
                "label2id": {"NEGATIVE": 0, "POSITIVE": 1},
            }
        }
        if classifier
        else {"embedding": {"pooling": "cls"}}
    )
    return {
        "model_id": served.model_id,
        "model_sha": served.revision,
        "model_dtype": "float16",
        "model_type": model_type,
        "prompts": None,
        "default_prompt": None,
        "max_concurrent_requests": served.max_concurrent_requests,
        "max_input_length": TEI_MAX_INPUT_TOKENS,
        "max_batch_tokens": TEI_MAX_BATCH_TOKENS,
        "max_batch_requests": None,
        "max_client_batch_size": served.max_client_batch_size,
        "auto_truncate": False,
        "tokenization_workers": 2,
        "version": "1.8.2",
        "sha": None,
        "docker_label": None,
    }


ENGINES = (
    Engine(
        image_kinds=("tei",),
        routes={
            "/": PIPELINE,
            # one vector per input, always a list of them
            "/embed": post(runners.feature_extraction),
            "/predict": Route(answer=runners.predict_or_pipeline),
            "/rerank": post(rerank),
            "/v1/embeddings": post(runners.openai_embeddings),
            "/info": get(info),
        },
        check_batch=check_batch,
    ),
)
