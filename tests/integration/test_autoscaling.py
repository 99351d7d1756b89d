"""
Autoscaling: the emulator adds replicas (up to maxReplica) under load and removes them when idle, as
the management API, the replica listing, the capacity and the billing meter show; the batch runner's
concurrency follows the replicas it reads, and nothing is lost on the way.
"""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from airflow_provider_hfep.emulator import Emulator, runners
from airflow_provider_hfep.inference.batch import BatchSettings, batch_client, run_batch
from airflow_provider_hfep.inference.tasks import get_task
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator

from tests.helpers import wait_until
from tests.integration.batch_child import TaskInstanceStub

pytestmark = pytest.mark.integration

SCALING = {
    "compute": {
        "accelerator": "gpu",
        "instanceType": "nvidia-l4",
        "instanceSize": "x1",
        "scaling": {"minReplica": 1, "maxReplica": 3},
    }
}


def test_replicas_are_added_under_load_and_removed_when_idle():
    with Emulator(capacity=4, latency_ms=200, scale_up_seconds=0.3, scale_down_seconds=0.5) as cloud:
        cloud.seed_endpoint("auto", **SCALING)
        url = cloud.endpoint_url("auto")
        stop = threading.Event()

        def load() -> None:  # more requests than one replica takes, until told to stop
            with httpx.Client(headers={"authorization": f"Bearer {cloud.token}"}, timeout=10) as http:
                while not stop.is_set():
                    http.post(url, json={"inputs": "load"})

        threads = [threading.Thread(target=load) for _ in range(12)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: cloud.load("auto")["replicas"] == 3, "three replicas", limit=60)
            endpoint = cloud.endpoint("auto")
            assert endpoint["status"]["readyReplica"] == endpoint["status"]["targetReplica"] == 3
            assert len(cloud.api("GET", "/v2/endpoint/demo/auto/replica").json()["replicas"]) == 3
            assert cloud.load("auto")["capacity"] == 12
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        wait_until(lambda: cloud.load("auto")["replicas"] == 1, "back to one replica when idle", limit=60)
        meter = cloud.billing("auto")
        assert meter["replica_seconds"] > meter["billable_seconds"]  # the added replicas were billed


def test_the_runner_follows_the_replicas_autoscaling_adds():
    with Emulator(capacity=4, latency_ms=100, scale_up_seconds=0.3, scale_down_seconds=60) as cloud:
        cloud.seed_endpoint("auto", **SCALING)
        url = cloud.endpoint_url("auto")
        results: dict[int, str] = {}
        jobs = [f"job {i}" for i in range(600)]

        async def replicas() -> int:
            return (await asyncio.to_thread(cloud.load, "auto"))["replicas"]

        async def main():
            auth = httpx.Headers({"authorization": f"Bearer {cloud.token}"})
            async with batch_client(None, 12) as client:
                client.headers.update(auth)
                return await run_batch(
                    client=client,
                    url=url,
                    task=get_task("text-generation"),
                    items=enumerate(jobs),
                    parameters={},
                    on_result=lambda r: results.__setitem__(r.index, r.output),
                    settings=BatchSettings(max_concurrency=12, replica_poll_interval=0.2),
                    total=len(jobs),
                    replicas=replicas,
                )

        summary = asyncio.run(main())
        assert cloud.load("auto")["replicas"] == 3
        assert summary.failed == 0
        assert results == {i: runners.generate_text(job, 20) for i, job in enumerate(jobs)}  # nothing lost
        assert summary.concurrency > 4  # grew past one replica's capacity with the replicas


@pytest.mark.parametrize(("max_concurrency", "allowed"), [(None, 128), (10, 10)])
def test_the_operator_allows_32_requests_per_replica_it_may_scale_to(cloud, max_concurrency, allowed):
    cloud.seed_endpoint("gen", compute={**SCALING["compute"], "scaling": {"minReplica": 1, "maxReplica": 4}})
    operator = HuggingFaceEndpointInferenceOperator(
        task_id="infer",
        endpoint_name="gen",
        task="text-generation",
        inputs=["a"],
        max_concurrency=max_concurrency,
    )
    assert operator.execute({"ti": TaskInstanceStub()}) == [runners.generate_text("a", 20)]
    assert operator.settings.max_concurrency == allowed
