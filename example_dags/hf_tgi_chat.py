"""The seed's TGI example as a DAG: create a Zephyr endpoint on text-generation-inference, chat with
it, and delete it in a teardown, so it is deleted even when the chat fails."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFaceDeleteEndpointOperator,
)
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

ENDPOINT = "zephyr-chat"
POLL_SECONDS = float(os.environ.get("HFEP_EXAMPLE_POLL_SECONDS", "30"))

with DAG(
    dag_id="hf_tgi_chat",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["huggingface", "example"],
    doc_md=__doc__,
):
    create = HuggingFaceCreateEndpointOperator(
        task_id="create",
        endpoint_name=ENDPOINT,
        repository="HuggingFaceH4/zephyr-7b-beta",
        framework="pytorch",
        task="text-generation",
        accelerator="gpu",
        vendor="aws",
        region="us-east-1",
        instance_type="nvidia-l4",
        instance_size="x1",
        custom_image={
            "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
            "healthRoute": "/health",
            "port": 80,
        },
        env={"MAX_INPUT_LENGTH": "1024", "MAX_TOTAL_TOKENS": "1512", "MODEL_ID": "/repository"},
        if_exists="reuse",
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )
    chat = HuggingFaceEndpointInferenceOperator(
        task_id="chat",
        endpoint_name=ENDPOINT,
        task="chat-completion",
        inputs=[
            [
                {"role": "system", "content": "You are a concise assistant."},
                {"role": "user", "content": "What is Airflow?"},
            ],
            [{"role": "user", "content": "Write a haiku about a paused GPU."}],
        ],
        parameters={"max_tokens": 64},
    )
    delete = HuggingFaceDeleteEndpointOperator(task_id="delete", endpoint_name=ENDPOINT, missing_ok=True)
    create >> chat >> delete.as_teardown(setups=create)
