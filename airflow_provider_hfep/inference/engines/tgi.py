"""TGI (text-generation-inference): generation on ``POST /``, and the OpenAI chat and completion routes."""

from __future__ import annotations

from airflow_provider_hfep.inference.engines import Engine
from airflow_provider_hfep.inference.shapes import TASKS
from airflow_provider_hfep.inference.structured import as_tgi_chat, as_tgi_grammar

ENGINES = (
    Engine(
        name="TGI",
        image_kinds=("tgi", "tgiNeuron"),
        # TGI serves one model whatever it is called: its OpenAI routes get huggingface_hub's "tgi".
        tasks=(TASKS["text-generation"], TASKS["chat-completion"], TASKS["completion"], TASKS["raw"]),
        info_path="/info",
        # JSON as a grammar: parameters.grammar on POST /, response_format's "value" on the chat route
        # (its /v1/completions takes none)
        structured_output={"text-generation": as_tgi_grammar, "chat-completion": as_tgi_chat},
    ),
)
