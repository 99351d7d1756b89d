"""
What the emulated models answer: deterministic outputs derived from the input, in each API's shapes.

The same input always gives the same output, so a test can recompute what a result must be and
prove that no result was swapped, lost or duplicated. Shared by the engines: which routes each server
has, and which of these answers each route, is :mod:`airflow_provider_hfep.emulator.engines`.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import math
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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


class TooLarge(BadInput):
    """More inputs in one request than the server takes (TEI's max_client_batch_size: 413)."""


#: set for one request by an ``invalid_output`` fault: its structured answer does not match its schema
SPOILED: contextvars.ContextVar[bool] = contextvars.ContextVar("spoiled", default=False)


def json_value(schema: Any, seed: str, depth: int = 0) -> Any:
    """
    Make a value of ``schema``, deterministically from ``seed``: what a grammar-constrained model writes.

    Objects get every property, arrays ``minItems`` items (at least one), strings generated words
    (within ``minLength``/``maxLength``), numbers a value within ``minimum``/``maximum``; ``enum``,
    ``const``, ``anyOf``/``oneOf`` (the first) and a list of types (the first that is not null) too.
    """
    digest = _digest(seed)
    if not isinstance(schema, dict) or depth > 8:
        return {}
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][digest[0] % len(schema["enum"])]
    for combined in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(combined), list) and schema[combined]:
            return json_value(schema[combined][0], seed, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties") or {}
        if not properties:
            return {"answer": generate_text(seed, 4).strip()}
        return {name: json_value(sub, f"{seed}/{name}", depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [json_value(schema.get("items", {}), f"{seed}/{i}", depth + 1) for i in range(count)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", 0)
        high = schema.get("maximum", low + 100)
        value = low + digest[1] % (int(high - low) + 1) if high > low else low
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return digest[2] % 2 == 0
    if kind == "null":
        return None
    text = generate_text(seed, 3).strip()
    text = text.ljust(int(schema.get("minLength", 0)), "x")
    return text[: schema["maxLength"]] if "maxLength" in schema else text


def structured_text(prompt: str, schema: dict[str, Any] | None, max_tokens: int) -> str:
    """
    Answer ``prompt``: JSON of ``schema`` when one is asked for, else generated words.

    A request an ``invalid_output`` fault picked gets the words even though it asked for JSON.
    """
    if schema is None or SPOILED.get():
        return generate_text(prompt, max_tokens).strip()
    return json.dumps(json_value(schema, prompt))


def finish_reason(schema: dict[str, Any] | None) -> str:
    """Say why generation stopped: a grammar's JSON is complete (``stop``); words run to the length."""
    return "stop" if schema is not None and not SPOILED.get() else "length"


#: the schema of OpenAI's ``{"type": "json_object"}``
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def openai_schema(body: Any) -> dict[str, Any] | None:
    """
    Read OpenAI's ``response_format`` (vLLM, SGLang, llama.cpp): ``json_schema``'s schema, any object for ``json_object``.

    Anything else of the spelling is not read, as those servers do not (a TGI ``value`` is ignored).
    """
    asked = body.get("response_format") if isinstance(body, dict) else None
    if not isinstance(asked, dict) or asked.get("type") in (None, "text"):
        return None
    if asked["type"] == "json_schema":
        spec = asked.get("json_schema")
        if not isinstance(spec, dict):
            raise BadInput("response_format.json_schema must be an object with a schema")
        return spec.get("schema") or ANY_OBJECT
    if asked["type"] == "json_object":
        return ANY_OBJECT
    raise BadInput(f"response_format type {asked['type']!r} is not supported")


def _grammar_schema(grammar: dict[str, Any], where: str) -> dict[str, Any]:
    if "value" not in grammar:
        raise BadInput(f"{where}: missing field `value`")
    value = grammar["value"]
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadInput(f"{where}: value is not a JSON Schema") from None
    if not isinstance(value, dict):
        raise BadInput(f"{where}: value is not a JSON Schema")
    return value


def tgi_chat_schema(body: Any) -> dict[str, Any] | None:
    """Read TGI's chat ``response_format``: a grammar, ``{"type": "json_object" (or "json"), "value": <schema>}``."""
    asked = body.get("response_format") if isinstance(body, dict) else None
    if asked is None:
        return None
    if not isinstance(asked, dict) or asked.get("type") not in ("json", "json_object"):
        kind = asked.get("type") if isinstance(asked, dict) else asked
        raise BadInput(f"response_format: unknown variant `{kind}`, expected `json` or `json_object`")
    return _grammar_schema(asked, "response_format")


def tgi_grammar_schema(body: Any) -> dict[str, Any] | None:
    """Read TGI's ``parameters.grammar`` (``POST /``, ``/generate``): ``{"type": "json", "value": <schema>}``."""
    parameters = body.get("parameters") if isinstance(body, dict) else None
    grammar = parameters.get("grammar") if isinstance(parameters, dict) else None
    if grammar is None:
        return None
    if not isinstance(grammar, dict) or grammar.get("type") != "json":
        raise BadInput("parameters.grammar: only {type: json, value: <schema>} is emulated")
    return _grammar_schema(grammar, "parameters.grammar")


def asks_structure(body: Any) -> bool:
    """Tell whether a request asks for structured output in any engine's spelling (for the faults)."""
    if not isinstance(body, dict):
        return False
    asked = body.get("response_format")
    parameters = body.get("parameters")
    grammar = parameters.get("grammar") if isinstance(parameters, dict) else None
    return (isinstance(asked, dict) and asked.get("type") != "text") or isinstance(grammar, dict)


def input_count(body: Any) -> int:
    """How many inputs one request carries (a list of them, or one)."""
    if not isinstance(body, dict):
        return 1
    inputs = body.get("inputs", body.get("input", body.get("texts", body.get("prompt"))))
    return len(inputs) if isinstance(inputs, list) and inputs else 1


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def generate_text(prompt: str, max_new_tokens: int = 20) -> str:
    """Continue ``prompt`` deterministically: ``max_new_tokens`` words picked by its hash."""
    digest = _digest(prompt)
    count = max(1, min(int(max_new_tokens), 64))
    return " " + " ".join(_WORDS[digest[i % len(digest)] % len(_WORDS)] for i in range(count))


def tokens_of(text: str) -> list[dict[str, Any]]:
    """Split generated ``text`` into TGI tokens (a word with its leading space), with stable ids and logprobs."""
    tokens = []
    for position, word in enumerate(text.split()):
        piece = word if position == 0 and not text.startswith(" ") else " " + word
        rank = _WORDS.index(word) if word in _WORDS else len(_WORDS)
        tokens.append(
            {
                "id": 1000 + rank,
                "text": piece,
                "logprob": -round(0.05 + 0.1 * (rank % 7), 2),
                "special": False,
            }
        )
    return tokens


def embed(text: str) -> list[float]:
    """Embed ``text`` as a deterministic unit vector of :data:`EMBEDDING_SIZE` floats."""
    digest = _digest(text)
    raw = [(digest[i] - 127.5) / 127.5 for i in range(EMBEDDING_SIZE)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def relevance(query: str, text: str) -> float:
    """Score how relevant ``text`` is to ``query``, deterministically, between 0 and 1."""
    return round(_digest(query + "\x00" + text)[0] / 255, 6)


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
    schema = tgi_grammar_schema(body)
    text = (
        structured_text(prompt, schema, parameters.get("max_new_tokens", 20))
        if schema is not None
        else generate_text(prompt, parameters.get("max_new_tokens", 20))
    )
    if parameters.get("return_full_text"):
        text = prompt + text
    answer: dict[str, Any] = {"generated_text": text}
    if parameters.get("details"):
        tokens = tokens_of(generate_text(prompt, parameters.get("max_new_tokens", 20)))
        answer["details"] = {
            "finish_reason": "length",
            "generated_tokens": len(tokens),
            "seed": parameters.get("seed"),
            "prefill": [],
            "tokens": tokens,
        }
    return answer if single else [answer]


def text_generation_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    """TGI ``/generate_stream`` (and ``/`` with ``stream: true``): one event per token, the text and details on the last."""
    prompt = _text_input(body)
    if not isinstance(prompt, str):
        raise BadInput("'inputs' must be a string for text-generation")
    parameters = body.get("parameters") or {}
    generated = generate_text(prompt, parameters.get("max_new_tokens", 20))
    tokens = tokens_of(generated)
    full = prompt + generated if parameters.get("return_full_text") else generated
    events = []
    for index, token in enumerate(tokens, start=1):
        last = index == len(tokens)
        events.append(
            {
                "index": index,
                "token": token,
                "top_tokens": None,
                "generated_text": full if last else None,
                "details": {
                    "finish_reason": "length",
                    "generated_tokens": len(tokens),
                    "seed": parameters.get("seed"),
                    "input_length": len(prompt.split()),
                }
                if last
                else None,
            }
        )
    return events


def _openai_head(kind: str, prompt: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{'chatcmpl' if kind.startswith('chat') else 'cmpl'}-" + _digest(prompt).hex()[:12],
        "object": kind,
        "created": int(time.time()),
        "model": body.get("model") or "tgi",
        "system_fingerprint": "hfep-emulator",
    }


def _usage(prompt: str, completion: str) -> dict[str, int]:
    prompt_tokens, completion_tokens = len(prompt.split()), len(completion.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _chat_prompt(body: Any) -> str:
    messages = body.get("messages") if isinstance(body, dict) else None
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and "content" in m for m in messages)
    ):
        raise BadInput("'messages' must be a non-empty list of {role, content}")
    return "\n".join(str(m["content"]) for m in messages)


def _max_tokens(body: dict[str, Any], default: int = 20) -> int:
    return body.get("max_tokens") or body.get("max_completion_tokens") or default


def chat_completion_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``/v1/chat/completions`` with ``stream: true``: ``chat.completion.chunk`` events (usage if asked)."""
    prompt = _chat_prompt(body)
    content = generate_text(prompt, _max_tokens(body)).strip()
    return _openai_chunks(
        "chat.completion.chunk",
        body,
        prompt,
        content,
        lambda text: {"delta": {"role": "assistant", "content": text}},
    )


def completion(body: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    OpenAI ``/v1/completions``: one choice per prompt (a string or a list of strings).

    With ``schema`` (read from the body by the engine, in its spelling) each text is JSON of it.
    """
    prompts = body.get("prompt") if isinstance(body, dict) else None
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadInput("'prompt' must be a string or a non-empty list of strings")
    texts = [
        structured_text(prompt, schema, _max_tokens(body, 16))
        if schema is not None
        else generate_text(prompt, _max_tokens(body, 16))
        for prompt in prompts
    ]
    if body.get("echo"):
        texts = [prompt + text for prompt, text in zip(prompts, texts)]
    return {
        **_openai_head("text_completion", prompts[0], body),
        "choices": [
            {"index": i, "text": text, "logprobs": None, "finish_reason": finish_reason(schema)}
            for i, text in enumerate(texts)
        ],
        "usage": _usage(" ".join(prompts), " ".join(texts)),
    }


def completion_stream(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``/v1/completions`` with ``stream: true``: one ``text_completion`` chunk per token (one prompt)."""
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str):
        raise BadInput("'prompt' must be a string when streaming")
    text = generate_text(prompt, _max_tokens(body, 16))
    return _openai_chunks("text_completion", body, prompt, text, lambda piece: {"text": piece})


def _openai_chunks(
    kind: str, body: dict[str, Any], prompt: str, text: str, carry: Callable[[str], dict[str, Any]]
) -> list[dict[str, Any]]:
    """
    Stream ``text`` as OpenAI-compatible servers do.

    A chunk per token (``carry`` puts the token in its choice), ``finish_reason`` on the last, then
    the usage when ``stream_options.include_usage`` asks for it.
    """
    head = _openai_head(kind, prompt, body)
    tokens = tokens_of(text)
    chunks = [
        {
            **head,
            "choices": [
                {
                    "index": 0,
                    **carry(token["text"]),
                    "logprobs": None,
                    "finish_reason": "length" if index == len(tokens) - 1 else None,
                }
            ],
        }
        for index, token in enumerate(tokens)
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        chunks.append({**head, "choices": [], "usage": _usage(prompt, text)})
    return chunks


def chat_completion(body: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """
    ``/v1/chat/completions``, OpenAI shape, answering the last user message.

    With ``schema`` (read from the body by the engine, in its spelling) the content is JSON of it.
    """
    prompt = _chat_prompt(body)
    content = structured_text(prompt, schema, _max_tokens(body))
    return {
        **_openai_head("chat.completion", prompt, body),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason(schema),
            }
        ],
        "usage": _usage(prompt, content),
    }


def feature_extraction(body: dict[str, Any]) -> Any:
    """TEI-style: a string gives ``[[floats]]``, a list of strings one vector each."""
    inputs = _text_input(body)
    vectors = _each(inputs, embed)
    return [vectors] if isinstance(inputs, str) else vectors


def predict(body: dict[str, Any]) -> Any:
    """
    Classify as TEI's ``/predict`` does.

    A string, or a flat list of one or two strings (a sentence pair), is one input; a list of such
    lists is a batch, answered with one list of labels each.
    """
    inputs = _text_input(body)
    if isinstance(inputs, str):
        return classify(inputs)
    if isinstance(inputs, list) and inputs and all(isinstance(item, str) for item in inputs):
        if len(inputs) > 2:
            raise BadInput(
                "`inputs` must be a string, a pair of strings, or a list of them (at most 2 a pair)"
            )
        return classify("\x00".join(inputs))
    if isinstance(inputs, list) and inputs and all(isinstance(item, list) for item in inputs):
        return [predict({"inputs": item if len(item) > 1 else item[0]}) if item else [] for item in inputs]
    raise BadInput("`inputs` must be a string, a pair of strings, or a list of them")


def openai_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``/v1/embeddings`` (TEI, vLLM...): one ``embedding`` object per input, in order."""
    inputs = body.get("input") if isinstance(body, dict) else None
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadInput("'input' must be a string or a non-empty list of strings")
    tokens = sum(len(t.split()) for t in texts)
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": embed(t)} for i, t in enumerate(texts)],
        "model": body.get("model") or "tei",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


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
    """Three candidates for the ``<mask>``, as the fill-mask pipeline answers."""
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


#: the pipeline behind ``POST /`` (and the toolkit's other routes), by the endpoint's task
PIPELINES = {
    "text-generation": text_generation,
    "text2text-generation": text_generation,
    "feature-extraction": feature_extraction,
    "sentence-embeddings": feature_extraction,
    "text-classification": text_classification,
    "summarization": summarization,
    "fill-mask": fill_mask,
}


def pipeline(task: str, body: Any) -> Any:
    """Answer as the pipeline of the endpoint's task does (``POST /`` of every Hugging Face container)."""
    handler = PIPELINES.get(task)
    if handler is None:
        raise BadInput(f"The emulator does not serve task {task!r}")
    return handler(body)


def predict_or_pipeline(task: str, body: Any) -> Any:
    """Answer ``POST /predict``: TEI's classification for a text-classification endpoint, else the pipeline."""
    return predict(body) if task == "text-classification" else pipeline(task, body)
