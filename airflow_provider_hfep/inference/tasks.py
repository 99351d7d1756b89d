"""
The inference tasks as the runner and the operator use them: which task, on which engine.

The tasks' shapes are :mod:`airflow_provider_hfep.inference.shapes`; the engines, and the tasks each
serves, :mod:`airflow_provider_hfep.inference.engines`. :func:`task_for_engine` puts them together and
refuses, before anything is sent, a task the endpoint cannot do. No Airflow, no I/O.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.inference import engines
from airflow_provider_hfep.inference.shapes import TASKS, InferenceTask, get_task

__all__ = [
    "MAX_NESTING",
    "TASKS",
    "InferenceTask",
    "get_task",
    "nesting_depth",
    "task_for_engine",
]

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


#: What a model does, whatever the task is called: a task of one family cannot run on a model of another.
_MODEL_FAMILIES = {
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
    it is the user's server. ``model`` is the name the engine's OpenAI routes send, where they name one.
    """
    get_task(name)
    engine = engines.engine_for(image_kind)
    served = engine.serving(model)
    if name not in served:
        raise InvalidEndpointArgumentError(
            "task",
            f"{name!r} is not served by {endpoint}, which runs {engine.name} ({image_kind})",
            f"use one of {', '.join(served)}, or an endpoint whose engine serves {name}",
        )
    wanted, offered = _MODEL_FAMILIES.get(name), _MODEL_FAMILIES.get(endpoint_task or "")
    if engine.checks_model_task and wanted and offered and wanted != offered:
        fitting = [task for task in served if _MODEL_FAMILIES.get(task) in (offered, None)]
        raise InvalidEndpointArgumentError(
            "task",
            f"{name!r} needs a {wanted} model, and {endpoint} serves a {endpoint_task} model with {engine.name}",
            f"use one of {', '.join(fitting)}, or an endpoint whose model does {name}",
        )
    return served[name]
