"""`make demo`: the seed guide's end-to-end batch, driven through the Airflow hook against the emulator.

Starts a local emulator, points the default Airflow connection at it, then: create an endpoint, wait
until it is running and healthy, send a few text-generation jobs, pause it, and show the billing
meter. Leaves no process behind.
"""

from __future__ import annotations

import os
import time

import httpx

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import EndpointSpec

JOBS = ["The nightly batch", "Airflow wakes the endpoint", "Inference runs", "Then it sleeps"]


def main() -> None:
    with Emulator(deploy_seconds=2.0, latency_ms=30) as cloud:
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

        hook = HuggingFaceEndpointHook()
        print(f"emulator: {cloud.url} (user {cloud.user})")
        ok, message = hook.test_connection()
        print(f"test_connection: {ok} - {message}")

        spec = EndpointSpec(
            name="batch-endpoint", repository="openai-community/gpt2", framework="pytorch", task="text-generation",
            accelerator="gpu", vendor="aws", region="us-east-1", instance_type="nvidia-l4", instance_size="x1",
            custom_image={"url": "ghcr.io/huggingface/text-generation-inference:3.1.1", "healthRoute": "/health", "port": 80},
        )  # fmt: skip
        endpoint = hook.client.create(spec)
        print(f"created: {endpoint.name} is {endpoint.status}")
        started = time.monotonic()
        endpoint = hook.client.wait(spec.name, poll_interval=0.25, timeout=60)
        print(f"running and healthy after {time.monotonic() - started:.1f} s: {endpoint.url}")

        with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=30) as http:
            for job in JOBS:
                answer = http.post(endpoint.url, json={"inputs": job, "parameters": {"max_new_tokens": 6}})
                answer.raise_for_status()
                print(f"  {job!r} -> {answer.json()[0]['generated_text']!r}")

        paused = hook.client.pause(spec.name)
        meter = cloud.billing(spec.name)
        print(f"paused: state {paused.status}, url {paused.url}")
        print(f"billing meter: {meter['billable_seconds']:.1f} billable s, {meter['requests']} requests")
        print(f"demo: {len(JOBS)} results, endpoint {paused.status}, billed {meter['billable_seconds']:.1f} s")


if __name__ == "__main__":
    main()
