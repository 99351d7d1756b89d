"""
How each task talks to an endpoint: its route, its input check, its request body and its answer's parsing.

The shapes as the real containers speak them (TGI, TEI, the inference toolkit, the OpenAI-compatible
servers) and as huggingface_hub's InferenceClient sends them. These are the generic tasks, the ones a
custom container gets; each engine (:mod:`airflow_provider_hfep.inference.engines`) picks the ones it
serves and moves some to its own routes. No Airflow, no I/O, no engine knowledge here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

if TYPE_CHECKING:
    from collections.abc import Callable


def check_text(index: int, item: Any, task: str) -> None:
    """Refuse an input that is not a non-empty string."""
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
    check_text(index, item, task)
    if "<mask>" not in item and "[MASK]" not in item:
        raise InvalidEndpointArgumentError(
            f"inputs[{index}]", "has no mask token", "put <mask> (or [MASK]) where the word goes"
        )


def _first(answer: Any) -> Any:
    return answer[0] if isinstance(answer, list) and answer else answer


def as_list(answer: Any) -> list[Any]:
    """Return a batch's answer, which must be a list of results (one per input)."""
    if not isinstance(answer, list):
        raise TypeError(f"expected a list of results, got {type(answer).__name__}")
    return answer


@dataclass(frozen=True)
class ModelBody:
    """
    A request body that names the model, as the OpenAI routes' bodies do; called like any task's body.

    :param build: makes the body from the model's name, one input (or a list of them) and the parameters.
    :param model: the name sent: by default the one huggingface_hub sends (``tgi``, ``tei``); an engine
        whose server checks it gets the endpoint's (:meth:`InferenceTask.naming`).
    """

    build: Callable[[str, Any, dict[str, Any]], Any]
    model: str

    def __call__(self, item: Any, parameters: dict[str, Any]) -> Any:
        return self.build(self.model, item, parameters)


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
    :param route: the route of one input, where each input names its own (OpenAI batch lines);
        ``None``: every input goes to ``path``.
    :param validate: checks one input's result and returns what is stored (a JSON answer parsed), or
        raises :class:`~airflow_provider_hfep.inference.structured.InvalidOutputError`; called with the
        input and its result.
    """

    name: str
    path: str
    check: Callable[[int, Any, str], None]
    body: Callable[[Any, dict[str, Any]], Any]
    parse: Callable[[Any], Any]
    batch_body: Callable[[list[Any], dict[str, Any]], Any] | None = None
    batch_parse: Callable[[Any], list[Any]] | None = None
    route: Callable[[Any], str] | None = None
    validate: Callable[[Any, Any], Any] | None = None

    def naming(self, model: str) -> InferenceTask:
        """Return this task with ``model`` in its bodies, where they name one (the OpenAI routes)."""
        body, batch_body = self.body, self.batch_body
        if isinstance(body, ModelBody):
            body = dataclasses.replace(body, model=model)
        if isinstance(batch_body, ModelBody):
            batch_body = dataclasses.replace(batch_body, model=model)
        return dataclasses.replace(self, body=body, batch_body=batch_body)


def _chat_body(model: str, item: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in item.items() if k != "messages"} if isinstance(item, dict) else {}
    messages = item["messages"] if isinstance(item, dict) else item
    return {"model": model, **parameters, **extra, "messages": messages, "stream": False}


def _openai_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """TGI-style parameters in OpenAI's words (``max_new_tokens`` is ``max_tokens`` there)."""
    renamed = {"max_new_tokens": "max_tokens", "stop_sequences": "stop", "return_full_text": "echo"}
    return {renamed.get(key, key): value for key, value in parameters.items()}


def _completion_body(model: str, item: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, **_openai_parameters(parameters), "prompt": item, "stream": False}


def _embeddings_body(model: str, item: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, **parameters, "input": item}


def _embeddings(answer: Any) -> list[Any]:
    return [item["embedding"] for item in sorted(answer["data"], key=lambda item: item["index"])]


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
            check_text,
            lambda x, p: {"inputs": x, "parameters": p},
            lambda a: _first(a)["generated_text"],
        ),
        # OpenAI shape: the result is the assistant message's content.
        InferenceTask(
            "chat-completion",
            "/v1/chat/completions",
            _messages,
            ModelBody(_chat_body, "tgi"),
            lambda a: a["choices"][0]["message"]["content"],
        ),
        # TEI: parameters sit at the top level; one string gives [[floats]].
        InferenceTask(
            "feature-extraction",
            "/",
            check_text,
            lambda x, p: {"inputs": x, **p},
            _first,
            lambda xs, p: {"inputs": xs, **p},
            as_list,
        ),
        InferenceTask(
            "text-classification",
            "/",
            check_text,
            lambda x, p: {"inputs": x, "parameters": p},
            _first,
            lambda xs, p: {"inputs": xs, "parameters": p},
            as_list,
        ),
        InferenceTask(
            "summarization",
            "/",
            check_text,
            lambda x, p: {"inputs": x, "parameters": p},
            lambda a: _first(a)["summary_text"],
        ),
        InferenceTask("fill-mask", "/", _fill_mask, lambda x, p: {"inputs": x, "parameters": p}, lambda a: a),
        # OpenAI shapes: the completion's text; the input's vector.
        InferenceTask(
            "completion", "/v1/completions", check_text, ModelBody(_completion_body, "tgi"), _completion_text
        ),
        InferenceTask(
            "embeddings",
            "/v1/embeddings",
            check_text,
            ModelBody(_embeddings_body, "tei"),
            _embedding,
            ModelBody(_embeddings_body, "tei"),
            _embeddings,
        ),
        # The caller's JSON, posted as is; the answer, returned as is.
        InferenceTask("raw", "/", _raw, lambda x, p: x, lambda a: a),
    )
}


def get_task(name: Any) -> InferenceTask:
    """Return the task called ``name``, or refuse it, listing the supported ones."""
    if name not in TASKS:
        raise InvalidEndpointArgumentError(
            "task", f"{name!r} is not a supported inference task", f"use one of {', '.join(TASKS)}"
        )
    return TASKS[name]
