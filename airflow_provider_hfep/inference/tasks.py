"""
Per-task request building and response parsing for a deployed endpoint (no Airflow, no I/O).

Shapes as the real containers speak them (TGI, TEI, the inference toolkit) and as huggingface_hub's
InferenceClient sends them. Every input is checked before anything is sent.
"""

from __future__ import annotations

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
    """

    name: str
    path: str
    check: Callable[[int, Any, str], None]
    body: Callable[[Any, dict[str, Any]], Any]
    parse: Callable[[Any], Any]


def _chat_body(item: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in item.items() if k != "messages"} if isinstance(item, dict) else {}
    messages = item["messages"] if isinstance(item, dict) else item
    return {"model": "tgi", **parameters, **extra, "messages": messages, "stream": False}


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
        InferenceTask("feature-extraction", "/", _text, lambda x, p: {"inputs": x, **p}, _first),
        InferenceTask("text-classification", "/", _text, lambda x, p: {"inputs": x, "parameters": p}, _first),
        InferenceTask(
            "summarization",
            "/",
            _text,
            lambda x, p: {"inputs": x, "parameters": p},
            lambda a: _first(a)["summary_text"],
        ),
        InferenceTask("fill-mask", "/", _fill_mask, lambda x, p: {"inputs": x, "parameters": p}, lambda a: a),
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
