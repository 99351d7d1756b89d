"""
Capacity never ends a night: figures for hardware fallback and windows over several endpoints, baseline beside candidate.

Everything runs against the emulator on an emulated clock: an emulated minute lasts ``--minute-seconds``
(deploys take ``DEPLOY_MINUTES``, the capacity timeout is the default 15 minutes, the wait timeout
the window's default 60, the poll interval the default 30 s), so a night's hour takes seconds and the
figures are given in emulated minutes (seconds for the close). The code measured is the provider's
own: the resume operator's ``execute()`` (inline wait) and the triggers' ``run()`` as the triggerer runs
them; only Airflow's scheduling between tasks is left out (it adds the same to both sides).

1. A night whose first choice (an A100) has no capacity: minutes from the start to the first result,
   today (no alternatives: the deployment stays ``pending`` until the wait's timeout and the night
   fails; or, with ``not_available``, the quota pre-flight refuses it at once) against
   ``hardware=[A100, L4]``.
2. A window over 3 endpoints: wall time until all run, one trigger watching the three resumed side by
   side against 3 windows in sequence; and, when one fails to deploy while the others wait for
   capacity, the real seconds from the failure to the last endpoint closed (one trigger for all,
   against a window per endpoint, where the others close at their own wait timeout), at a real poll
   interval (``--poll-seconds``).

    .venv/bin/python benchmarks/capacity_fallback.py [--minute-seconds 0.2] [--poll-seconds 5]
        [--wait-timeout-seconds 30] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from typing import Any

import httpx
import structlog

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import EndpointsClient
from airflow_provider_hfep.endpoints.errors import EndpointsError
from airflow_provider_hfep.operators.endpoint import HuggingFaceResumeEndpointOperator
from airflow_provider_hfep.triggers.endpoint import (
    HuggingFaceEndpointsReadyTrigger,
    HuggingFaceEndpointStatusTrigger,
)

DEPLOY_MINUTES = 4.0  # a GPU endpoint's pending + initializing
CAPACITY_TIMEOUT_MINUTES = 15.0  # the default capacity_timeout
WAIT_TIMEOUT_MINUTES = 60.0  # the window's default wait_timeout
POLL_MINUTES = 0.5  # the default 30 s poll interval
WHERE = {"vendor": "aws", "region": "us-east-1"}
A100 = {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"}
L4 = {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x1"}
T4 = {"accelerator": "gpu", "instanceType": "nvidia-t4", "instanceSize": "x1", "scaling": {"minReplica": 1}}


class _TaskInstance:
    """What ``execute()`` asks of its task instance here: a first try, and XCom it may ignore."""

    try_number = 1
    task_id = "resume"
    map_index = -1

    def xcom_push(self, key: str, value: Any) -> None:
        """Keep nothing: the link and the choices tried are not measured."""


def client(cloud: Emulator) -> EndpointsClient:
    return EndpointsClient(cloud.token, api_url=cloud.url, hub_url=cloud.url, namespace=cloud.user)


def first_result_minutes(
    cloud: Emulator, minute: float, availability: str, *, hardware: list[dict[str, str]] | None
) -> float | None:
    """Resume the night's endpoint (first choice out of capacity) and send the first job: emulated minutes, or None if the night failed."""
    cloud.reset()
    cloud.seed_endpoint(
        "night", state="paused", compute={**T4, "instanceType": "nvidia-a100", "scaling": {"minReplica": 1}}
    )
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", availability)
    resume = HuggingFaceResumeEndpointOperator(
        task_id="resume",
        endpoint_name="night",
        wait_for_completion=True,
        deferrable=False,
        poll_interval=POLL_MINUTES * minute,
        timeout=WAIT_TIMEOUT_MINUTES * minute,
        capacity_timeout=CAPACITY_TIMEOUT_MINUTES * minute,
        hardware=hardware,
    )
    started = time.monotonic()
    try:
        resume.execute({"ti": _TaskInstance()})  # type: ignore[arg-type]
    except EndpointsError as exc:
        print(
            f"      night failed after {(time.monotonic() - started) / minute:5.1f} min: {type(exc).__name__}"
        )
        return None
    answer = httpx.post(
        cloud.endpoint_url("night"),
        json={"inputs": "job 0"},
        headers={"authorization": f"Bearer {cloud.token}"},
    )
    answer.raise_for_status()
    return (time.monotonic() - started) / minute


def seed_three(cloud: Emulator) -> None:
    cloud.reset()
    for name in ("embedder", "reranker", "generator"):
        cloud.seed_endpoint(name, state="paused", compute=T4)


async def ready_together(cloud: Emulator, minute: float) -> float:
    """Resume three endpoints side by side and wait for all in one trigger: seconds."""
    started = time.monotonic()
    with client(cloud) as api:
        for name in ("embedder", "reranker", "generator"):
            api.resume(name)
        now = api.api_time
    trigger = HuggingFaceEndpointsReadyTrigger(
        hf_conn_id="hf_inference_endpoints_default",
        endpoints=[{"name": n, "namespace": cloud.user} for n in ("embedder", "reranker", "generator")],
        end_time=now + WAIT_TIMEOUT_MINUTES * minute,
        poll_interval=POLL_MINUTES * minute,
    )
    async for event in trigger.run():
        assert event.payload["status"] == "success", event.payload
    return time.monotonic() - started


async def ready_in_sequence(cloud: Emulator, minute: float) -> float:
    """Three windows one after the other: resume, wait (the status trigger), next: seconds until the last runs."""
    started = time.monotonic()
    for name in ("embedder", "reranker", "generator"):
        with client(cloud) as api:
            api.resume(name)
            end_time = api.api_time + WAIT_TIMEOUT_MINUTES * minute
        trigger = HuggingFaceEndpointStatusTrigger(
            hf_conn_id="hf_inference_endpoints_default",
            endpoint_name=name,
            namespace=cloud.user,
            end_time=end_time,
            poll_interval=POLL_MINUTES * minute,
        )
        async for event in trigger.run():
            assert event.payload["status"] == "success", event.payload
    return time.monotonic() - started


async def close_after_failure(cloud: Emulator, poll: float, wait_timeout: float, *, together: bool) -> float:
    """
    The generator fails to deploy while the others wait for capacity; real seconds from its failure to the last endpoint closed.

    Together: one trigger watches the three; its event fails the window, whose closes run at once.
    Apart (a window per endpoint): the generator's window closes it at once; the others' windows
    close theirs when their own waits end (their timeout: they never get capacity).
    """
    seed_three(cloud)
    cloud.set_availability("aws", "us-east-1", "nvidia-t4", "low_availability")
    with client(cloud) as api:
        for name in ("embedder", "reranker", "generator"):
            api.resume(name)
        end_time = api.api_time + wait_timeout
    failed_at = time.time() + 1.5 * poll  # between two looks, as a failure comes
    closed: dict[str, float] = {}

    async def fail_generator() -> None:
        await asyncio.sleep(max(0.0, failed_at - time.time()))
        cloud.set_state("generator", "failed", "CUDA error: device-side assert triggered")

    def close(name: str) -> None:
        with client(cloud) as api:
            api.pause(name)
        closed[name] = time.time()

    async def watch_one(name: str) -> None:
        trigger = HuggingFaceEndpointStatusTrigger(
            hf_conn_id="hf_inference_endpoints_default",
            endpoint_name=name,
            namespace=cloud.user,
            end_time=end_time,
            poll_interval=poll,
        )
        async for _ in trigger.run():
            close(name)  # the window's teardown, whatever the wait said

    failing = asyncio.ensure_future(fail_generator())
    if together:
        trigger = HuggingFaceEndpointsReadyTrigger(
            hf_conn_id="hf_inference_endpoints_default",
            endpoints=[{"name": n, "namespace": cloud.user} for n in ("embedder", "reranker", "generator")],
            end_time=end_time,
            poll_interval=poll,
        )
        async for event in trigger.run():
            assert event.payload["result"]["endpoint_name"] == "generator", event.payload
            for name in ("embedder", "reranker", "generator"):
                close(name)
    else:
        await asyncio.gather(*(watch_one(n) for n in ("embedder", "reranker", "generator")))
    await failing
    return max(closed.values()) - failed_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--minute-seconds", type=float, default=0.2, help="real seconds per emulated minute")
    parser.add_argument(
        "--poll-seconds", type=float, default=5.0, help="poll interval of the close figure (real)"
    )
    parser.add_argument(
        "--wait-timeout-seconds",
        type=float,
        default=30.0,
        help="the others' wait timeout in the close figure",
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny, fast run (figures not meaningful)")
    options = parser.parse_args()
    minute = 0.02 if options.smoke else options.minute_seconds
    logging.disable(logging.WARNING)  # the operators' own log lines are not the figures
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    with Emulator(
        deploy_seconds=DEPLOY_MINUTES * minute, update_lag_seconds=0.05 * minute, latency_ms=1
    ) as cloud:
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        print(
            f"1 emulated minute = {minute:g} s; deploy {DEPLOY_MINUTES:g} min, capacity_timeout "
            f"{CAPACITY_TIMEOUT_MINUTES:g} min, wait timeout {WAIT_TIMEOUT_MINUTES:g} min, poll {POLL_MINUTES * 60:g} s"
        )
        print("1. First choice (A100) out of capacity: emulated minutes from the start to the first result")
        for availability in ("low_availability", "not_available"):
            today = first_result_minutes(cloud, minute, availability, hardware=None)
            fallback = first_result_minutes(cloud, minute, availability, hardware=[A100, L4])
            said = "never (the night fails)" if today is None else f"{today:5.1f} min"
            print(f"   A100 {availability:16s}  today: {said:24s}  hardware=[A100, L4]: {fallback:5.1f} min")
        print("2. Three endpoints")
        seed_three(cloud)
        together = asyncio.run(ready_together(cloud, minute))
        seed_three(cloud)
        apart = asyncio.run(ready_in_sequence(cloud, minute))
        print(
            f"   all running: one window over 3 {together / minute:5.1f} min   3 windows in sequence {apart / minute:5.1f} min"
        )
        poll, wait_timeout = (
            (0.5, 3.0) if options.smoke else (options.poll_seconds, options.wait_timeout_seconds)
        )
        together_close = asyncio.run(close_after_failure(cloud, poll, wait_timeout, together=True))
        apart_close = asyncio.run(close_after_failure(cloud, poll, wait_timeout, together=False))
        print(
            f"   one fails to deploy while the others wait for capacity, real seconds from the failure to the "
            f"last closed (poll {poll:g} s):\n"
            f"   one window over 3: {together_close:5.1f} s   a window each: {apart_close:5.1f} s (the others' "
            f"wait timeout, here {wait_timeout:g} s; 3600 s by default)"
        )


if __name__ == "__main__":
    main()
