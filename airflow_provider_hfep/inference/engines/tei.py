"""TEI (text-embeddings-inference): vectors on ``/embed``, labels on ``/predict``, OpenAI embeddings."""

from __future__ import annotations

import dataclasses

from airflow_provider_hfep.inference.engines import Engine
from airflow_provider_hfep.inference.shapes import TASKS, InferenceTask, as_list, check_text

ENGINES = (
    Engine(
        name="TEI",
        image_kinds=("tei",),
        tasks=(
            dataclasses.replace(TASKS["feature-extraction"], path="/embed"),
            InferenceTask(
                "text-classification",
                "/predict",
                check_text,
                lambda x, p: {"inputs": x, **p},
                lambda a: a,
                # TEI reads a flat list as one sentence pair: a batch is a list of one-text lists.
                lambda xs, p: {"inputs": [[x] for x in xs], **p},
                as_list,
            ),
            TASKS["embeddings"],
            TASKS["raw"],
        ),
        info_path="/info",
        # /v1/embeddings names the endpoint's model (its repository).
        names_model=True,
    ),
)
