"""The inference toolkit (the ``huggingface`` images): the pipeline of the endpoint's task, on ``/``, ``/predict`` and ``/invocations``."""

from __future__ import annotations

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.engines import PIPELINE, Engine, Route

ENGINES = (
    Engine(
        image_kinds=("huggingface", "huggingfaceNeuron"),
        routes={
            "/": PIPELINE,
            "/predict": Route(answer=runners.predict_or_pipeline),
            "/invocations": Route(answer=runners.pipeline),
        },
    ),
)
