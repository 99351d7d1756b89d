"""
A cost-safe window around the work of a DAG: the endpoint runs only while the work needs it.

.. code-block:: python

    with endpoint_window("batch-endpoint", max_cost=12.5, stop_at="06:00"):
        HuggingFaceEndpointInferenceOperator(task_id="infer", endpoint_name="batch-endpoint", ...)

gives, in a task group::

    resume (setup) >> ready (deferrable sensor) >> your tasks >> pause (teardown) >> cost_report (teardown)
                      ready >> budget (deferred, beside the work; only with a cap) >> cost_report

Why this shape (Airflow's setup/teardown rules): a teardown runs once its upstream tasks are done,
even if they failed or timed out, and a failed teardown does not fail the run. The setup only *asks*
the endpoint to resume, and the wait for ``running`` happens in the sensor inside the window, so a
deployment that fails or times out still gets paused. The close is not tied to the resume as its
teardown: a teardown whose setup failed is skipped, and a resume can fail after taking effect (its
answer lost), so the close runs even then; pausing a paused endpoint costs one request.

On Airflow 3.4 a task loop (``@task_group`` ... ``.loop()``) goes inside the window: the endpoint is
resumed once, serves every iteration and is closed once. A window inside a loop is refused: the loop
starts its next iteration when the body's last task ends, which the window's close (a teardown) is
not, so one iteration's pause could land while the next iteration's work runs.

A run marked failed by hand is covered too: Airflow kills the running work and skips what has not
started, but leaves teardowns to run, and the run stays running until they have.

Three things hold when the work misbehaves or Airflow is gone:

- the **safety net** (``idle_stop_minutes``): before the resume, the endpoint is set to scale itself
  to zero after that many minutes without requests; the service does it, with Airflow dead or alive;
- the **caps** (``max_cost``, ``max_runtime``, ``stop_at``): a ``budget`` task deferred beside the work
  counts the spend in the triggerer and closes the endpoint when the first cap fires, while the
  window's inference tasks, which watch the same caps, stop sending and fail naming it;
- the **report**: what the service says ran (replica start and stop times), times the price, and the
  cap that fired, in XCom, the task log and an Asset event.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias, TaskGroup, task

from airflow_provider_hfep._compat import enclosing_task_loop
from airflow_provider_hfep.endpoints.arguments import check_choice, check_count
from airflow_provider_hfep.endpoints.costs import WindowCaps
from airflow_provider_hfep.endpoints.errors import EndpointsError, InvalidEndpointArgumentError
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.operators.budget import HuggingFaceEndpointBudgetOperator, seconds_of
from airflow_provider_hfep.operators.endpoint import (
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
)
from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor
from airflow_provider_hfep.window.billing import billable_report, price_per_hour

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logging.getLogger(__name__)

CLOSE_OPERATORS = {
    "pause": HuggingFacePauseEndpointOperator,
    "scale_to_zero": HuggingFaceScaleToZeroEndpointOperator,
}
#: the Asset alias each window's cost report adds an event to: ``Asset("hfep://<ns>/<name>/cost")``
COST_ALIAS = "hf-endpoint-cost"
#: seconds between two looks at the caps from an inference task, at most
CAP_CHECK_SECONDS = 5.0


def cost_asset(namespace: str, name: str) -> Asset:
    """Name the Asset of an endpoint's nightly cost: its events carry the cost report as ``extra``."""
    return Asset(uri=f"hfep://{namespace}/{name}/cost", name=f"hf-endpoint-cost:{namespace}/{name}")


def _report(
    hook: HuggingFaceEndpointHook, opened: dict[str, Any] | None, closed: dict[str, Any] | None, cap: Any
) -> dict[str, Any]:
    """Read what ran (replicas) and the price, best effort, and make the report."""
    price, replicas = None, None
    if opened:
        try:
            price = price_per_hour(hook.client.list_hardware(opened["namespace"]), opened)
        except EndpointsError as exc:
            log.warning("Could not read the hardware listing for the price: %s", exc)
        try:
            replicas = hook.client.replicas(opened["name"], namespace=opened["namespace"])
        except EndpointsError as exc:
            log.warning("Could not read the replicas (the report falls back to the status): %s", exc)
    fired = cap.get("cap") if isinstance(cap, dict) and cap.get("status") == "cap" else None
    return billable_report(opened, closed, price, replicas, fired)


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
    idle_stop_minutes: int | None = 15,
    max_cost: float | None = None,
    max_runtime: float | timedelta | None = None,
    stop_at: str | None = None,
    timezone: str = "UTC",
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
    :param poke_interval: seconds between two looks at the endpoint (the sensor's and the caps').
    :param idle_stop_minutes: the safety net: before the resume, the endpoint is set to scale itself
        to zero after this many minutes without requests, which the service does with no client
        involved, so a window whose Airflow died stops billing then. Default 15; ``None`` turns it off.
    :param max_cost: USD the endpoint may cost in one window (its replicas' time since the resume,
        times the price per replica-hour from the hardware listing); then the window closes it.
    :param max_runtime: seconds (or a ``timedelta``) the window may stay open from the resume.
    :param stop_at: a time of day, ``"HH:MM"`` in ``timezone``: the window closes at its first
        occurrence after the resume (say, before the office opens).
    :param timezone: the IANA time zone of ``stop_at``. Default ``"UTC"``.
    :return: the task group; cost report in XCom of ``<group_id>.cost_report`` (and an event of the
        Asset ``hfep://<namespace>/<name>/cost`` through the alias ``hf-endpoint-cost``).
    """
    check_choice("close", close, tuple(CLOSE_OPERATORS))
    if idle_stop_minutes is not None:
        check_count("idle_stop_minutes", idle_stop_minutes, 1)
    caps = WindowCaps(max_cost, seconds_of("max_runtime", max_runtime), stop_at, timezone)
    common: dict[str, Any] = {
        "endpoint_name": endpoint_name,
        "namespace": namespace,
        "hf_conn_id": hf_conn_id,
    }
    with TaskGroup(group_id or "endpoint_window") as group:
        _refuse_inside_a_loop(group)
        resume = HuggingFaceResumeEndpointOperator(
            task_id="resume", wait_for_completion=False, idle_stop_minutes=idle_stop_minutes, **common
        )
        # The sensor defers by default: the wait holds no worker slot.
        ready = HuggingFaceEndpointSensor(
            task_id="ready", timeout=wait_timeout, poke_interval=poke_interval, **common
        )
        closer = CLOSE_OPERATORS[close](task_id=close, **common)
        budget = None
        if caps.capped:
            budget = HuggingFaceEndpointBudgetOperator(
                task_id="budget",
                max_cost=caps.max_cost,
                max_runtime=caps.max_runtime,
                stop_at=caps.stop_at,
                timezone=caps.timezone,
                opened_by=resume.task_id,
                close=close,
                poke_interval=poke_interval,
                **common,
            )

        @task(task_id="cost_report", outlets=[AssetAlias(COST_ALIAS)])
        def cost_report(ti=None, outlet_events=None) -> dict[str, Any]:
            opened = ti.xcom_pull(task_ids=resume.task_id)
            closed = ti.xcom_pull(task_ids=closer.task_id)
            cap = ti.xcom_pull(task_ids=budget.task_id) if budget is not None else None
            hook = HuggingFaceEndpointHook(hf_conn_id, namespace=namespace)
            report = _report(hook, opened, closed, cap)
            log.info("Endpoint %s: %s", endpoint_name, report["summary"])
            if opened:
                asset = cost_asset(opened["namespace"], opened["name"])
                outlet_events[AssetAlias(COST_ALIAS)].add(asset, extra={**report, "run_id": ti.run_id})
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
        if budget is not None:
            ready >> budget >> report
            _watch_caps_in(work, caps, resume.task_id, poke_interval)
        resume.as_setup()
        closer.as_teardown()
        report.as_teardown()


def _refuse_inside_a_loop(group: TaskGroup) -> None:
    """Refuse a window built inside an Airflow 3.4 task loop, saying why and what to write instead."""
    loop = enclosing_task_loop(group)
    if loop is not None:
        raise InvalidEndpointArgumentError(
            "endpoint_window",
            f"it is inside the task loop {loop!r}, which starts its next iteration when the body's last "
            "task ends, before this iteration's close (a teardown) has run: that close could stop the "
            "endpoint under the next iteration's work",
            "put the loop inside the window (with endpoint_window(...): body.loop(...)); the endpoint "
            "is then resumed once, serves every iteration and is closed once",
        )


def _watch_caps_in(work: list[Any], caps: WindowCaps, opened_by: str, poke_interval: float) -> None:
    """Give the window's inference tasks its caps (in nested groups and loops too): they stop sending the moment one fires."""
    window_budget = {
        "caps": caps.to_json(),
        "opened_by": opened_by,
        "check_interval": min(CAP_CHECK_SECONDS, poke_interval),
    }
    for child in (op for node in work for op in (node if isinstance(node, TaskGroup) else [node])):
        if isinstance(child, HuggingFaceEndpointInferenceOperator):
            child.window_budget = window_budget
        elif getattr(child, "operator_class", None) is HuggingFaceEndpointInferenceOperator:
            child.partial_kwargs["window_budget"] = window_budget  # mapped: each instance gets it
