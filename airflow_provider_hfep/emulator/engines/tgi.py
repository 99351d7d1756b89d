"""TGI (text-generation-inference): ``POST /``, ``/generate``, ``/generate_stream``, the OpenAI chat and completion routes."""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.engines import (
    MODELS,
    PIPELINE,
    Engine,
    Route,
    Served,
    get,
    post,
    when_asked,
)


def generate(body: Any) -> Any:
    """TGI ``/generate``: one object, where ``POST /`` answers a list of one."""
    return runners.text_generation(body, single=True)


def info(served: Served) -> dict[str, Any]:
    """TGI's ``GET /info``: what the router serves and its limits (one replica's: each tells its own)."""
    return {
        "model_id": served.model_id,
        "model_sha": served.revision,
        "model_pipeline_tag": served.task,
        "model_dtype": "torch.bfloat16",
        "model_device_type": "cuda",
        "max_concurrent_requests": served.max_concurrent_requests,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": 4095,
        "max_total_tokens": 4096,
        "validation_workers": 2,
        "max_client_batch_size": served.max_client_batch_size,
        "router": "text-generation-router",
        "version": "3.3.4",
        "sha": None,
        "docker_label": None,
    }


ENGINES = (
    Engine(
        image_kinds=("tgi", "tgiNeuron"),
        routes={
            "/": PIPELINE,
            "/generate": post(generate),
            # streams whether or not the body asks: that is the route's point
            "/generate_stream": Route(stream=runners.text_generation_stream),
            # structured output as a grammar: response_format {"type": "json_object", "value": <schema>}
            "/v1/chat/completions": post(
                lambda body: runners.chat_completion(body, runners.tgi_chat_schema(body)),
                stream=when_asked(runners.chat_completion_stream),
            ),
            "/v1/completions": post(runners.completion, stream=when_asked(runners.completion_stream)),
            "/info": get(info),
            "/v1/models": MODELS,
        },
    ),
)
