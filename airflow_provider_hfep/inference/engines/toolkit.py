"""The inference toolkit (the ``huggingface`` images): one route, ``POST /``, the pipeline of the endpoint's task."""

from __future__ import annotations

from airflow_provider_hfep.inference.engines import Engine
from airflow_provider_hfep.inference.shapes import TASKS

ENGINES = (
    Engine(
        name="inference toolkit",
        image_kinds=("huggingface", "huggingfaceNeuron"),
        tasks=tuple(
            TASKS[name]
            for name in (
                "text-generation",
                "feature-extraction",
                "text-classification",
                "summarization",
                "fill-mask",
                "raw",
            )
        ),
    ),
)
