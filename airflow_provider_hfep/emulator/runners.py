"""
What the emulated models answer: deterministic outputs derived from the input, in each task's shape.

The same input always gives the same output, so a test can recompute what a result must be and
prove that no result was swapped, lost or duplicated.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

EMBEDDING_SIZE = 16
_WORDS = (
    "the",
    "model",
    "answers",
    "quickly",
    "and",
    "batch",
    "jobs",
    "run",
    "every",
    "night",
    "while",
    "endpoint",
    "costs",
    "nothing",
    "by",
    "day",
    "airflow",
    "schedules",
    "work",
    "tokens",
    "flow",
    "through",
    "a",
    "small",
    "emulated",
    "cloud",
    "with",
    "care",
    "results",
    "stay",
    "in",
    "order",
)


class BadInput(ValueError):
    """The request body does not fit the task (answered 400 / 422 like the real containers)."""


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def generate_text(prompt: str, max_new_tokens: int = 20) -> str:
    """Continue ``prompt`` deterministically: ``max_new_tokens`` words picked by its hash."""
    digest = _digest(prompt)
    count = max(1, min(int(max_new_tokens), 64))
    return " " + " ".join(_WORDS[digest[i % len(digest)] % len(_WORDS)] for i in range(count))


def embed(text: str) -> list[float]:
    """Embed ``text`` as a deterministic unit vector of :data:`EMBEDDING_SIZE` floats."""
    digest = _digest(text)
    raw = [(digest[i] - 127.5) / 127.5 for i in range(EMBEDDING_SIZE)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def classify(text: str) -> list[dict[str, Any]]:
    """Two labels with scores summing to 1, highest first."""
    positive = round(0.05 + 0.9 * (_digest(text)[0] / 255), 6)
    labels = [
        {"label": "POSITIVE", "score": positive},
        {"label": "NEGATIVE", "score": round(1 - positive, 6)},
    ]
    return sorted(labels, key=lambda item: item["score"], reverse=True)


def _text_input(body: dict[str, Any]) -> Any:
    if not isinstance(body, dict) or "inputs" not in body:
        raise BadInput("Missing 'inputs' in the request body")
    return body["inputs"]


def _each(inputs: Any, answer):
    if isinstance(inputs, str):
        return answer(inputs)
    if isinstance(inputs, list) and inputs and all(isinstance(item, str) for item in inputs):
        return [answer(item) for item in inputs]
    raise BadInput("'inputs' must be a string or a non-empty list of strings")


def text_generation(body: dict[str, Any], single: bool = False) -> Any:
    """TGI ``POST /`` (a list) or ``/generate`` (one object)."""
    prompt = _text_input(body)
    if not isinstance(prompt, str):
        raise BadInput("'inputs' must be a string for text-generation")
    parameters = body.get("parameters") or {}
    text = generate_text(prompt, parameters.get("max_new_tokens", 20))
    if parameters.get("return_full_text"):
        text = prompt + text
    answer: dict[str, Any] = {"generated_text": text}
    if parameters.get("details"):
        tokens = text.split()
        answer["details"] = {
            "finish_reason": "length",
            "generated_tokens": len(tokens),
            "seed": None,
            "prefill": [],
            "tokens": [],
        }
    return answer if single else [answer]


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    """TGI ``/v1/chat/completions``, OpenAI shape, answering the last user message."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and "content" in m for m in messages)
    ):
        raise BadInput("'messages' must be a non-empty list of {role, content}")
    prompt = "\n".join(str(m["content"]) for m in messages)
    content = generate_text(prompt, body.get("max_tokens") or 20).strip()
    prompt_tokens = len(prompt.split())
    completion_tokens = len(content.split())
    return {
        "id": "chatcmpl-" + _digest(prompt).hex()[:12],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or "tgi",
        "system_fingerprint": "hfep-emulator",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def feature_extraction(body: dict[str, Any]) -> Any:
    """TEI-style: a string gives ``[[floats]]``, a list of strings one vector each."""
    inputs = _text_input(body)
    vectors = _each(inputs, embed)
    return [vectors] if isinstance(inputs, str) else vectors


def text_classification(body: dict[str, Any]) -> Any:
    """``[[{label, score}, ...]]`` per input, as the inference toolkit answers."""
    inputs = _text_input(body)
    top_k = (body.get("parameters") or {}).get("top_k")
    answers = _each(inputs, lambda text: classify(text)[: top_k or None])
    return [answers] if isinstance(inputs, str) else answers


def summarization(body: dict[str, Any]) -> Any:
    """``[{"summary_text"}]`` for a string, one object per input for a list."""
    inputs = _text_input(body)
    summaries = _each(inputs, lambda text: {"summary_text": generate_text(text, 8).strip()})
    return [summaries] if isinstance(inputs, str) else summaries


def fill_mask(body: dict[str, Any]) -> Any:
    inputs = _text_input(body)
    if not isinstance(inputs, str) or "<mask>" not in inputs:
        raise BadInput("'inputs' must be a string containing <mask>")
    digest = _digest(inputs)
    tokens = [_WORDS[digest[i] % len(_WORDS)] for i in range(3)]
    scores = [0.6, 0.3, 0.1]
    return [
        {"score": score, "token": digest[i], "token_str": token, "sequence": inputs.replace("<mask>", token)}
        for i, (token, score) in enumerate(zip(tokens, scores))
    ]


ROOT_HANDLERS = {
    "text-generation": text_generation,
    "text2text-generation": text_generation,
    "feature-extraction": feature_extraction,
    "sentence-embeddings": feature_extraction,
    "text-classification": text_classification,
    "summarization": summarization,
    "fill-mask": fill_mask,
}


def answer(task: str, path: str, body: Any) -> Any:
    """Dispatch a data-plane POST to the handler for the endpoint's task and the route."""
    if path in ("/v1/chat/completions",):
        return chat_completion(body)
    if path == "/generate":
        return text_generation(body, single=True)
    if path in ("/embed",):
        return feature_extraction(body)
    if path in ("", "/", "/predict", "/invocations"):
        handler = ROOT_HANDLERS.get(task)
        if handler is None:
            raise BadInput(f"The emulator does not serve task {task!r}")
        return handler(body)
    raise LookupError(path)
