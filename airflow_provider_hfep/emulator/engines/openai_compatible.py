"""The OpenAI-compatible servers (vLLM, SGLang, llama.cpp): the OpenAI routes only, no ``POST /``."""

from __future__ import annotations

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.engines import MODELS, Engine, post, when_asked

ENGINES = (
    Engine(
        image_kinds=("vLLM", "vLLMNeuron", "sGLang", "llamacpp"),
        routes={
            # structured output as OpenAI spells it (response_format json_object / json_schema)
            "/v1/chat/completions": post(
                lambda body: runners.chat_completion(body, runners.openai_schema(body)),
                stream=when_asked(runners.chat_completion_stream),
            ),
            "/v1/completions": post(
                lambda body: runners.completion(body, runners.openai_schema(body)),
                stream=when_asked(runners.completion_stream),
            ),
            "/v1/embeddings": post(runners.openai_embeddings),
            "/v1/models": MODELS,
        },
    ),
)
