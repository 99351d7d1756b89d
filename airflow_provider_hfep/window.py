"""
A cost-safe window around the work of a DAG: the endpoint runs only while the work needs it.

.. code-block:: python

    with endpoint_window("batch-endpoint"):
        HuggingFaceEndpointInferenceOperator(task_id="infer", endpoint_name="batch-endpoint", ...)

gives, in a task group::

    resume (setup) >> ready (deferrable sensor) >> your tasks >> pause (teardown) >> cost_report (teardown)

Why this shape (Airflow's setup/teardown rules): a teardown runs once its upstream tasks are done,
even if they failed or timed out, and a failed teardown does not fail the run. The setup only *asks*
the endpoint to resume, and the wait for ``running`` happens in the sensor inside the window, so a
deployment that fails or times out still gets paused. The close is not tied to the resume as its
teardown: a teardown whose setup failed is skipped, and a resume can fail after taking effect (its
answer lost), so the close runs even then; pausing a paused endpoint costs one request.

A run marked failed by hand is covered too: Airflow kills the running work and skips what has not
started, but leaves teardowns to run, and the run stays running until they have.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from airflow.sdk import TaskGroup, task

from airflow_provider_hfep.endpoints.errors import EndpointsError
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.operators.endpoint import (
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
)
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

log = logging.getLogger(__name__)

CLOSE_OPERATORS = {
    "pause": HuggingFacePauseEndpointOperator,
    "scale_to_zero": HuggingFaceScaleToZeroEndpointOperator,
}


def billable_report(
    opened: dict[str, Any] | None, closed: dict[str, Any] | None, price_per_hour: float | None
) -> dict[str, Any]:
    """
    How long the endpoint was billable in a window, from what the resume and close tasks returned.

    Billing runs from the resume (the endpoint leaves ``paused``) to the close (it is ``paused`` or
    ``scaledToZero`` again), both read from the endpoint's own status timestamps. That includes the few
    seconds of ``pending`` before ``initializing``, which are not billed: an upper bound, by design.

    :param opened: the resume task's result (the endpoint as it answered the resume), if it ran.
    :param closed: the close task's result, if it ran.
    :param price_per_hour: the instance's price per replica-hour, if the hardware listing gave one.
    """
    if not opened:
        state = closed["status"] if closed else None
        now = f" It is {state}." if state else ""
        return {
            "billable_seconds": 0.0,
            "state": state,
            "estimated_cost_usd": 0.0 if price_per_hour is not None else None,
            "summary": f"The endpoint was never started: the resume did not succeed.{now}",
        }
    started = datetime.fromisoformat(opened["updated_at"])
    replicas = max(1, int(opened["raw"]["compute"]["scaling"].get("minReplica") or 0))
    if not closed:
        return {
            "billable_seconds": None,
            "state": "unknown",
            "estimated_cost_usd": None,
            "replicas": replicas,
            "summary": "The endpoint was resumed but the window did not close it: it may still be billing.",
        }
    seconds = max(0.0, (datetime.fromisoformat(closed["updated_at"]) - started).total_seconds())
    cost = None if price_per_hour is None else round(seconds / 3600 * replicas * price_per_hour, 6)
    price = "" if cost is None else f", about ${cost:.4f} at ${price_per_hour}/h per replica"
    return {
        "billable_seconds": round(seconds, 3),
        "state": closed["status"],
        "replicas": replicas,
        "price_per_hour": price_per_hour,
        "estimated_cost_usd": cost,
        "summary": f"Billable for at most {seconds:.1f} s x {replicas} replica(s){price}; the endpoint is now {closed['status']}.",
    }


def _price(hook: HuggingFaceEndpointHook, endpoint: dict[str, Any]) -> float | None:
    compute, provider = endpoint["raw"]["compute"], endpoint["raw"]["provider"]
    try:
        offers = hook.client.list_hardware(endpoint["namespace"])
    except EndpointsError:
        return None
    for offer in offers:
        if (offer.vendor, offer.region, offer.instance_type, offer.instance_size) == (
            provider["vendor"],
            provider["region"],
            compute["instanceType"],
            compute["instanceSize"],
        ):
            return offer.price_per_hour
    return None


@contextmanager
def endpoint_window(
    endpoint_name: str,
    *,
    namespace: str | None = None,
    hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
    group_id: str | None = None,
    close: str = "pause",
    wait_timeout: float = 3600,
    poke_interval: float = 30,
) -> Iterator[TaskGroup]:
    """
    Open a window in which ``endpoint_name`` runs; the tasks created inside are the work.

    :param endpoint_name: the endpoint to run during the window.
    :param namespace: its namespace (default: the connection's, or the token's user).
    :param hf_conn_id: the Airflow connection.
    :param group_id: the task group's id. Default ``endpoint_window``.
    :param close: how the window ends: ``pause`` (default; no cost, must be resumed) or
        ``scale_to_zero`` (no cost, restarts on the next request).
    :param wait_timeout: seconds the sensor waits for ``running`` (then the window closes).
    :param poke_interval: seconds between two looks at the endpoint.
    :return: the task group; cost report in XCom of ``<group_id>.cost_report``.
    """
    if close not in CLOSE_OPERATORS:
        raise ValueError(f"close: {close!r} is not allowed. Fix: use 'pause' or 'scale_to_zero'")
    common = {"endpoint_name": endpoint_name, "namespace": namespace, "hf_conn_id": hf_conn_id}
    with TaskGroup(group_id or "endpoint_window") as group:
        resume = HuggingFaceResumeEndpointOperator(task_id="resume", wait_for_completion=False, **common)
        # Deferred explicitly: the wait must hold no worker slot, whatever [operators] default_deferrable says.
        ready = HuggingFaceEndpointSensor(
            task_id="ready", deferrable=True, timeout=wait_timeout, poke_interval=poke_interval, **common
        )
        closer = CLOSE_OPERATORS[close](task_id=close, **common)

        @task(task_id="cost_report")
        def cost_report(ti=None) -> dict[str, Any]:
            opened = ti.xcom_pull(task_ids=resume.task_id)
            closed = ti.xcom_pull(task_ids=closer.task_id)
            hook = HuggingFaceEndpointHook(hf_conn_id, namespace=namespace)
            report = billable_report(opened, closed, _price(hook, opened) if opened else None)
            log.info("Endpoint %s: %s", endpoint_name, report["summary"])
            return report

        report = cost_report()
        before = set(group.children)
        yield group
        work = [child for key, child in group.children.items() if key not in before]
        roots = [t for t in work if not any(u in work for u in t.upstream_list)]
        leaves = [t for t in work if not any(d in work for d in t.downstream_list)]
        resume >> ready
        if work:
            ready >> roots
            leaves >> closer
        else:
            ready >> closer
        closer >> report
        resume.as_setup()
        closer.as_teardown()
        report.operator.as_teardown()
