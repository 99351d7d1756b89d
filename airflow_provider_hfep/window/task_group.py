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
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import TaskGroup, task

from airflow_provider_hfep.endpoints.arguments import check_choice
from airflow_provider_hfep.endpoints.errors import EndpointsError
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.operators.endpoint import (
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
)
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor
from airflow_provider_hfep.window.billing import billable_report, price_per_hour

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

CLOSE_OPERATORS = {
    "pause": HuggingFacePauseEndpointOperator,
    "scale_to_zero": HuggingFaceScaleToZeroEndpointOperator,
}


def _price(hook: HuggingFaceEndpointHook, endpoint: dict[str, Any]) -> float | None:
    try:
        return price_per_hour(hook.client.list_hardware(endpoint["namespace"]), endpoint)
    except EndpointsError:
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
    check_choice("close", close, tuple(CLOSE_OPERATORS))
    common: dict[str, Any] = {
        "endpoint_name": endpoint_name,
        "namespace": namespace,
        "hf_conn_id": hf_conn_id,
    }
    with TaskGroup(group_id or "endpoint_window") as group:
        resume = HuggingFaceResumeEndpointOperator(task_id="resume", wait_for_completion=False, **common)
        # The sensor defers by default: the wait holds no worker slot.
        ready = HuggingFaceEndpointSensor(
            task_id="ready", timeout=wait_timeout, poke_interval=poke_interval, **common
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
        report.as_teardown()
