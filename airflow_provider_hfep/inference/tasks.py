"""
Per-task request building and response parsing for a deployed endpoint (no Airflow, no I/O).

Shapes as the real containers speak them (TGI, TEI, the inference toolkit) and as huggingface_hub's
InferenceClient sends them. Every input is checked before anything is sent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable


def _text(index: int, item: Any, task: str) -> None:
    if not isinstance(item, str) or not item:
        raise InvalidEndpointArgumentError(
            f"inputs[{index}]",
            f"expected a non-empty string for {task}, got {type(item).__name__}",
            "pass one string per job",
        )


def _messages(index: int, item: Any, task: str) -> None:
    messages = item.get("messages") if isinstance(item, dict) else item
    if (
        not isinstance(messages, list)
        or not messages
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages
        )
    ):
        raise InvalidEndpointArgumentError(
            f"inputs[{index}]",
            f"expected a list of {{role, content}} messages for {task}",
            'pass e.g. [{"role": "user", "content": "Hello"}] (or {"messages": [...], ...})',
        )


def _raw(index: int, item: Any, task: str) -> None:
    if not isinstance(item, dict):
        raise InvalidEndpointArgumentError(
            f"inputs[{index}]",
            f"expected a JSON object for {task}",
            'pass the exact body, e.g. {"inputs": "..."}',
        )


def _fill_mask(index: int, item: Any, task: str) -> None:
    _text(index, item, task)
    if "<mask>" not in item and "[MASK]" not in item:
        raise InvalidEndpointArgumentError(
            f"inputs[{index}]", "has no mask token", "put <mask> (or [MASK]) where the word goes"
        )


#: levels of nesting a job or an answer may have: far past any real one, far below Python's recursion
#: limit (which a deeper value would hit in the JSON encoder, ending the whole batch)
MAX_NESTING = 100


def nesting_depth(value: Any, limit: int = MAX_NESTING) -> int:
    """
    Measure how deeply lists and objects nest in ``value``, stopping once past ``limit``.

    Iterative, so a value nested thousands deep is measured without recursion.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, tuple, dict)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _first(answer: Any) -> Any:
    return answer[0] if isinstance(answer, list) and answer else answer


@dataclass(frozen=True)
class InferenceTask:
    """
    How one task talks to an endpoint.

    :param name: the task name users pass.
    :param path: the route, relative to the endpoint URL.
    :param check: refuses a malformed input (index, item, task name).
    :param body: builds the request body from one input and the shared parameters.
    :param parse: extracts the result of one input from the response JSON.
    :param batch_body: builds one request body from a list of inputs, where the route takes lists.
    :param batch_parse: extracts each input's result, in order, from the answer to ``batch_body``.
    """

    name: str
    path: str
    check: Callable[[int, Any, str], None]
    body: Callable[[Any, dict[str, Any]], Any]
    parse: Callable[[Any], Any]
    batch_body: Callable[[list[Any], dict[str, Any]], Any] | None = None
    batch_parse: Callable[[Any], list[Any]] | None = None


def _chat_body(item: Any, parameters: dict[str, Any], model: str = "tgi") -> dict[str, Any]:
    extra = {k: v for k, v in item.items() if k != "messages"} if isinstance(item, dict) else {}
    messages = item["messages"] if isinstance(item, dict) else item
    return {"model": model, **parameters, **extra, "messages": messages, "stream": False}


def _openai_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """TGI-style parameters in OpenAI's words (``max_new_tokens`` is ``max_tokens`` there)."""
    renamed = {"max_new_tokens": "max_tokens", "stop_sequences": "stop", "return_full_text": "echo"}
    return {renamed.get(key, key): value for key, value in parameters.items()}


def _completion_body(model: str) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    return lambda x, p: {"model": model, **_openai_parameters(p), "prompt": x, "stream": False}


def _embeddings_body(model: str) -> Callable[[Any, dict[str, Any]], dict[str, Any]]:
    return lambda x, p: {"model": model, **p, "input": x}


def _embeddings(answer: Any) -> list[Any]:
    return [item["embedding"] for item in sorted(answer["data"], key=lambda item: item["index"])]


def _as_list(answer: Any) -> list[Any]:
    if not isinstance(answer, list):
        raise TypeError(f"expected a list of results, got {type(answer).__name__}")
    return answer


def _completion_text(answer: Any) -> Any:
    return answer["choices"][0]["text"]


def _embedding(answer: Any) -> Any:
    return answer["data"][0]["embedding"]


TASKS: dict[str, InferenceTask] = {
    task.name: task
    for task in (
        # TGI's compatible route answers a list; the text of the first element is the result.
        InferenceTask(
            "text-generation",
            "/",
            _text,
            lambda x, p: {"inputs": x, "parameters": p},
            lambda a: _first(a)["generated_text"],
        ),
        # OpenAI shape: the result is the assistant message's content.
        InferenceTask(
            "chat-completion",
            "/v1/chat/completions",
            _messages,
            _chat_body,
            lambda a: a["choices"][0]["message"]["content"],
        ),
        # TEI: parameters sit at the top level; one string gives [[floats]].
        InferenceTask(
            "feature-extraction",
            "/",
            _text,
            lambda x, p: {"inputs": x, **p},
            _first,
            lambda xs, p: {"inputs": xs, **p},
            _as_list,
        ),
        InferenceTask(
            "text-classification",
            "/",
            _text,
            lambda x, p: {"inputs": x, "parameters": p},
            _first,
            lambda xs, p: {"inputs": xs, "parameters": p},
            _as_list,
        ),
        InferenceTask(
            "summarization",
            "/",
            _text,
            lambda x, p: {"inputs": x, "parameters": p},
            lambda a: _first(a)["summary_text"],
        ),
        InferenceTask("fill-mask", "/", _fill_mask, lambda x, p: {"inputs": x, "parameters": p}, lambda a: a),
        # OpenAI shapes: the completion's text; the input's vector.
        InferenceTask("completion", "/v1/completions", _text, _completion_body("tgi"), _completion_text),
        InferenceTask(
            "embeddings",
            "/v1/embeddings",
            _text,
            _embeddings_body("tei"),
            _embedding,
            _embeddings_body("tei"),
            _embeddings,
        ),
        # The caller's JSON, posted as is; the answer, returned as is.
        InferenceTask("raw", "/", _raw, lambda x, p: x, lambda a: a),
    )
}


#: Image kinds (``model.image``'s key) -> the engine family that serves them.
ENGINES = {
    "tgi": "TGI",
    "tgiNeuron": "TGI",
    "tei": "TEI",
    "vLLM": "vLLM",
    "vLLMNeuron": "vLLM",
    "sGLang": "SGLang",
    "llamacpp": "llama.cpp",
    "huggingface": "inference toolkit",
    "huggingfaceNeuron": "inference toolkit",
}
#: engines that serve the OpenAI routes only (their ``model`` is the name ``/v1/models`` gives)
OPENAI_ONLY = ("vLLM", "SGLang", "llama.cpp")


def _engine_tasks(engine: str, model: str) -> dict[str, InferenceTask]:
    """Tell what each engine serves, task by task: the route and body its server takes, one result shape."""
    generic = TASKS
    # The OpenAI routes name the model the engine serves; the rest is the generic task's.
    chat = dataclasses.replace(generic["chat-completion"], body=lambda x, p: _chat_body(x, p, model))
    completion = dataclasses.replace(generic["completion"], body=_completion_body(model))
    embeddings = dataclasses.replace(
        generic["embeddings"], body=_embeddings_body(model), batch_body=_embeddings_body(model)
    )
    if engine == "TGI":
        served = [generic["text-generation"], generic["chat-completion"], generic["completion"]]
    elif engine == "TEI":
        served = [
            dataclasses.replace(generic["feature-extraction"], path="/embed"),
            InferenceTask(
                "text-classification",
                "/predict",
                _text,
                lambda x, p: {"inputs": x, **p},
                lambda a: a,
                # TEI reads a flat list as one sentence pair: a batch is a list of one-text lists.
                lambda xs, p: {"inputs": [[x] for x in xs], **p},
                _as_list,
            ),
            embeddings,
        ]
    elif engine in OPENAI_ONLY:
        served = [
            dataclasses.replace(completion, name="text-generation"),
            chat,
            completion,
            embeddings,
            dataclasses.replace(embeddings, name="feature-extraction"),
        ]
    else:  # the inference toolkit: one route, the pipeline of the endpoint's task
        served = [
            generic[name]
            for name in (
                "text-generation",
                "feature-extraction",
                "text-classification",
                "summarization",
                "fill-mask",
            )
        ]
    if engine not in OPENAI_ONLY:  # raw posts to "/", which the OpenAI-only servers do not serve
        served.append(generic["raw"])
    return {task.name: task for task in served}


#: What a model does, whatever the task is called: a task of one family cannot run on a model of another.
_FAMILIES = {
    "text-generation": "generative",
    "text2text-generation": "generative",
    "conversational": "generative",
    "chat-completion": "generative",
    "completion": "generative",
    "feature-extraction": "embedding",
    "sentence-embeddings": "embedding",
    "sentence-similarity": "embedding",
    "embeddings": "embedding",
    "text-classification": "classification",
    "sentiment-analysis": "classification",
    "summarization": "summarization",
    "fill-mask": "fill-mask",
}


def task_for_engine(
    name: str,
    image_kind: str | None,
    model: str,
    endpoint: str = "the endpoint",
    endpoint_task: str | None = None,
) -> InferenceTask:
    """
    Return how task ``name`` talks to an endpoint whose image kind is ``image_kind``.

    The route follows the engine (``text-generation`` is ``POST /`` on TGI and the toolkit,
    ``/v1/completions`` on vLLM, SGLang and llama.cpp); the result a user gets does not. Refused,
    naming the engine and what it serves: a task the engine does not serve, and a task the endpoint's
    model cannot do (``endpoint_task``, when the API gives it: no embeddings from a text-generation
    model). A custom container (or an image kind this package does not know) gets the generic routes:
    it is the user's server.
    """
    task = get_task(name)
    engine = ENGINES.get(image_kind or "")
    if engine is None:
        return task
    served = _engine_tasks(engine, model)
    if name not in served:
        raise InvalidEndpointArgumentError(
            "task",
            f"{name!r} is not served by {endpoint}, which runs {engine} ({image_kind})",
            f"use one of {', '.join(served)}, or an endpoint whose engine serves {name}",
        )
    wanted, offered = _FAMILIES.get(name), _FAMILIES.get(endpoint_task or "")
    if wanted and offered and wanted != offered:
        fitting = [task for task in served if _FAMILIES.get(task) in (offered, None)]
        raise InvalidEndpointArgumentError(
            "task",
            f"{name!r} needs a {wanted} model, and {endpoint} serves a {endpoint_task} model with {engine}",
            f"use one of {', '.join(fitting)}, or an endpoint whose model does {name}",
        )
    return served[name]


def get_task(name: Any) -> InferenceTask:
    """Return the task called ``name``, or refuse it, listing the supported ones."""
    if name not in TASKS:
        raise InvalidEndpointArgumentError(
            "task", f"{name!r} is not a supported inference task", f"use one of {', '.join(TASKS)}"
        )
    return TASKS[name]
