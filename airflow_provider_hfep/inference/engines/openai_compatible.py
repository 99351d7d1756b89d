"""
The OpenAI-compatible servers: vLLM, SGLang and llama.cpp serve the OpenAI routes only.

Text generation is ``/v1/completions`` there (``max_new_tokens`` sent as ``max_tokens``), feature
extraction ``/v1/embeddings``; no ``raw``, as these servers have no ``POST /``. Their OpenAI routes take
the model name the server lists on ``/v1/models``, which the inference operator reads first.
"""

from __future__ import annotations

import dataclasses

from airflow_provider_hfep.inference.engines import Engine
from airflow_provider_hfep.inference.shapes import TASKS
from airflow_provider_hfep.inference.structured import as_openai

_TASKS = (
    dataclasses.replace(TASKS["completion"], name="text-generation"),
    TASKS["chat-completion"],
    TASKS["completion"],
    TASKS["embeddings"],
    dataclasses.replace(TASKS["embeddings"], name="feature-extraction"),
)

#: vLLM and SGLang take OpenAI's response_format on both generation routes
_STRUCTURED = dict.fromkeys(("text-generation", "chat-completion", "completion"), as_openai)

ENGINES = (
    Engine(
        name="vLLM",
        image_kinds=("vLLM", "vLLMNeuron"),
        tasks=_TASKS,
        models_path="/v1/models",
        names_model=True,
        structured_output=_STRUCTURED,
    ),
    Engine(
        name="SGLang",
        image_kinds=("sGLang",),
        tasks=_TASKS,
        models_path="/v1/models",
        names_model=True,
        structured_output=_STRUCTURED,
    ),
    # llama.cpp's server takes OpenAI's response_format on its chat route
    Engine(
        name="llama.cpp",
        image_kinds=("llamacpp",),
        tasks=_TASKS,
        models_path="/v1/models",
        names_model=True,
        structured_output={"chat-completion": as_openai},
    ),
)
