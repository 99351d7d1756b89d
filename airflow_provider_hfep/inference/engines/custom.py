"""
A custom container, and any image kind this package does not know: the user's own server.

It gets every generic task on its generic route, as sent by huggingface_hub; nothing is refused, not
even a task the endpoint's model does not do, since the server may serve anything.
"""

from __future__ import annotations

from airflow_provider_hfep.inference.engines import FALLBACK_KIND, Engine
from airflow_provider_hfep.inference.shapes import TASKS
from airflow_provider_hfep.inference.structured import as_openai, as_tgi_grammar

ENGINES = (
    Engine(
        name="custom container",
        image_kinds=(FALLBACK_KIND,),
        tasks=tuple(TASKS.values()),
        checks_model_task=False,
        # as huggingface_hub sends it: a grammar on POST /, OpenAI's response_format on the OpenAI routes
        structured_output={
            "text-generation": as_tgi_grammar,
            "chat-completion": as_openai,
            "completion": as_openai,
        },
    ),
)
