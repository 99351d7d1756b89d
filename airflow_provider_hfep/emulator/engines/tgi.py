"""TGI (text-generation-inference): ``POST /``, ``/generate``, ``/generate_stream``, the OpenAI chat and completion routes."""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.engines import GET, PIPELINE, Engine, Route, post, when_asked


def generate(body: Any) -> Any:
    """TGI ``/generate``: one object, where ``POST /`` answers a list of one."""
    return runners.text_generation(body, single=True)


ENGINES = (
    Engine(
        image_kinds=("tgi", "tgiNeuron"),
        routes={
            "/": PIPELINE,
            "/generate": post(generate),
            # streams whether or not the body asks: that is the route's point
            "/generate_stream": Route(stream=runners.text_generation_stream),
            "/v1/chat/completions": post(
                runners.chat_completion, stream=when_asked(runners.chat_completion_stream)
            ),
            "/v1/completions": post(runners.completion, stream=when_asked(runners.completion_stream)),
            "/info": GET,
            "/v1/models": GET,
        },
    ),
)
