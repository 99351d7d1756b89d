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
from airflow_provider_hfep.endpoints.hardware import parse_hardware
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.operators.budget import HuggingFaceEndpointBudgetOperator, seconds_of
from airflow_provider_hfep.operators.endpoint import (
    CAPACITY_TIMEOUT,
    HuggingFaceEndpointsReadyOperator,
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
    endpoint_targets,
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
            # the hardware it ran on last: where a fallback moved it, the close tells (the resume cannot)
            price = price_per_hour(hook.client.list_hardware(opened["namespace"]), closed or opened)
        except EndpointsError as exc:
            log.warning("Could not read the hardware listing for the price: %s", exc)
        try:
            replicas = hook.client.replicas(opened["name"], namespace=opened["namespace"])
        except EndpointsError as exc:
            log.warning("Could not read the replicas (the report falls back to the status): %s", exc)
    fired = cap.get("cap") if isinstance(cap, dict) and cap.get("status") == "cap" else None
    return billable_report(opened, closed, price, replicas, fired)


def total_report(reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Add up the reports of a window's endpoints: each one, and the total (``None`` if one has no price)."""
    costs = [r.get("estimated_cost_usd") for r in reports.values()]
    total = None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)
    seconds = [r.get("replica_seconds") for r in reports.values()]
    replica_total = None if any(s is None for s in seconds) else round(sum(s or 0.0 for s in seconds), 3)
    price = "unknown" if total is None else f"${total:.4f}"
    return {
        "endpoints": reports,
        "estimated_cost_usd": total,
        "replica_seconds": replica_total,
        "summary": f"{len(reports)} endpoints, {price} in all: "
        + " ".join(f"{where}: {r['summary']}" for where, r in reports.items()),
    }


@contextmanager
def endpoint_window(
    endpoint_name: str | list[str | dict[str, Any]],
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
    hardware: list[dict[str, str]] | None = None,
    capacity_timeout: float = CAPACITY_TIMEOUT,
    hardware_sticky: bool = False,
) -> Iterator[TaskGroup]:
    """
    Open a window in which ``endpoint_name`` runs; the tasks created inside are the work.

    :param endpoint_name: the endpoint to run during the window; or a list of them (names, or dicts
        ``{"name", "namespace", "hardware"}``): all are resumed side by side, watched together in the
        triggerer, the work runs once all run, and each is closed whatever happened (at once when
        one of them cannot run). The caps (``max_cost``, ``max_runtime``, ``stop_at``) take one
        endpoint.
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
    :param hardware: the endpoint's ordered hardware choices, best first (see
        :class:`~airflow_provider_hfep.operators.endpoint.HuggingFaceResumeEndpointOperator`); with
        several endpoints, each dict's own ``hardware``. The window closes the endpoint on whatever
        choice it ended on, then puts it back on the first choice (unless ``hardware_sticky``).
    :param capacity_timeout: seconds a deployment may stay ``pending`` before the next choice.
        Default 900 (15 minutes).
    :param hardware_sticky: start from the choice the endpoint ended on last time, and leave it there
        at the close. Default False: each night starts from the first choice.
    :return: the task group; cost report in XCom of ``<group_id>.cost_report`` (and an event of the
        Asset ``hfep://<namespace>/<name>/cost`` through the alias ``hf-endpoint-cost``, one per
        endpoint).
    """
    check_choice("close", close, tuple(CLOSE_OPERATORS))
    if idle_stop_minutes is not None:
        check_count("idle_stop_minutes", idle_stop_minutes, 1)
    caps = WindowCaps(max_cost, seconds_of("max_runtime", max_runtime), stop_at, timezone)
    if isinstance(endpoint_name, str) and hardware is None:
        with _one_endpoint_window(
            endpoint_name,
            namespace,
            hf_conn_id,
            group_id,
            close,
            wait_timeout,
            poke_interval,
            idle_stop_minutes,
            caps,
        ) as group:
            yield group
        return
    several = not isinstance(endpoint_name, str)
    if several and hardware is not None:
        raise InvalidEndpointArgumentError(
            "hardware",
            "a window over several endpoints takes each one's hardware in its own dict",
            "give {'name': ..., 'hardware': [...]} in the list instead",
        )
    if several and caps.capped:
        raise InvalidEndpointArgumentError(
            "max_cost",
            "the caps (max_cost, max_runtime, stop_at) take a window over one endpoint",
            "open one window per endpoint to cap, or leave the caps out",
        )
    entries = endpoint_name if several else [{"name": endpoint_name, "hardware": parse_hardware(hardware)}]
    targets = endpoint_targets(entries, "endpoint_name")
    for target in targets:
        target["namespace"] = target["namespace"] or namespace
    with _fallback_window(
        targets,
        several,
        hf_conn_id,
        group_id,
        close,
        wait_timeout,
        poke_interval,
        idle_stop_minutes,
        caps,
        capacity_timeout,
        hardware_sticky,
    ) as group:
        yield group


@contextmanager
def _one_endpoint_window(
    endpoint_name: str,
    namespace: str | None,
    hf_conn_id: str,
    group_id: str | None,
    close: str,
    wait_timeout: float,
    poke_interval: float,
    idle_stop_minutes: int | None,
    caps: WindowCaps,
) -> Iterator[TaskGroup]:
    """Build the window over one endpoint without hardware choices: resume >> sensor >> work >> close >> report."""
    target = {"name": endpoint_name, "namespace": namespace}
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
        budget = _budget(caps, target, hf_conn_id, resume.task_id, close, poke_interval)
        report = _cost_report([target], [resume], [closer], budget, hf_conn_id, several=False)
        before = set(group.children)
        yield group
        _wire(group, before, [resume], ready, [closer], report, budget, caps, poke_interval)


@contextmanager
def _fallback_window(
    targets: list[dict[str, Any]],
    several: bool,
    hf_conn_id: str,
    group_id: str | None,
    close: str,
    wait_timeout: float,
    poke_interval: float,
    idle_stop_minutes: int | None,
    caps: WindowCaps,
    capacity_timeout: float,
    hardware_sticky: bool,
) -> Iterator[TaskGroup]:
    """
    Build the window over several endpoints, or one with hardware choices.

    resume (one per endpoint, side by side) >> ready (all watched in one trigger, moved down their
    choices) >> work >> close (one per endpoint) >> report; with caps (one endpoint) the budget too.
    """

    def suffix(target: dict[str, Any]) -> str:
        return f"_{target['name']}" if several else ""

    def choices_of(target: dict[str, Any]) -> list[dict[str, Any]] | None:
        return None if target["hardware"] is None else [c.to_json() for c in target["hardware"]]

    with TaskGroup(group_id or "endpoint_window") as group:
        _refuse_inside_a_loop(group)
        resumes, closers = [], []
        for target in targets:
            common: dict[str, Any] = {
                "endpoint_name": target["name"],
                "namespace": target["namespace"],
                "hf_conn_id": hf_conn_id,
            }
            resumes.append(
                HuggingFaceResumeEndpointOperator(
                    task_id=f"resume{suffix(target)}",
                    wait_for_completion=False,
                    idle_stop_minutes=idle_stop_minutes,
                    hardware=choices_of(target),
                    capacity_timeout=capacity_timeout,
                    hardware_sticky=hardware_sticky,
                    on_kill_action=close,
                    **common,
                )
            )
            first = target["hardware"][0].to_json() if target["hardware"] and not hardware_sticky else None
            closers.append(
                CLOSE_OPERATORS[close](task_id=f"{close}{suffix(target)}", restore_hardware=first, **common)
            )
        ready = HuggingFaceEndpointsReadyOperator(
            task_id="ready",
            endpoints=[
                {"name": t["name"], "namespace": t["namespace"], "hardware": choices_of(t)} for t in targets
            ],
            hf_conn_id=hf_conn_id,
            timeout=wait_timeout,
            poll_interval=poke_interval,
            capacity_timeout=capacity_timeout,
            close=close,
        )
        # caps take a window over one endpoint (checked by endpoint_window)
        budget = _budget(caps, targets[0], hf_conn_id, resumes[0].task_id, close, poke_interval)
        report = _cost_report(targets, resumes, closers, budget, hf_conn_id, several=several)
        before = set(group.children)
        yield group
        _wire(group, before, resumes, ready, closers, report, budget, caps, poke_interval)


def _budget(
    caps: WindowCaps,
    target: dict[str, Any],
    hf_conn_id: str,
    opened_by: str,
    close: str,
    poke_interval: float,
) -> HuggingFaceEndpointBudgetOperator | None:
    """Build the budget task that closes the endpoint when a cap fires (``None`` without caps)."""
    if not caps.capped:
        return None
    return HuggingFaceEndpointBudgetOperator(
        task_id="budget",
        max_cost=caps.max_cost,
        max_runtime=caps.max_runtime,
        stop_at=caps.stop_at,
        timezone=caps.timezone,
        opened_by=opened_by,
        close=close,
        poke_interval=poke_interval,
        endpoint_name=target["name"],
        namespace=target["namespace"],
        hf_conn_id=hf_conn_id,
    )


def _cost_report(
    targets: list[dict[str, Any]],
    resumes: list[Any],
    closers: list[Any],
    budget: HuggingFaceEndpointBudgetOperator | None,
    hf_conn_id: str,
    *,
    several: bool,
) -> Any:
    """Build the report task: each endpoint's bill (and an Asset event), and with several, their total."""

    @task(task_id="cost_report", outlets=[AssetAlias(COST_ALIAS)])
    def cost_report(ti=None, outlet_events=None) -> dict[str, Any]:
        cap = ti.xcom_pull(task_ids=budget.task_id) if budget is not None else None
        reports = {}
        for target, resume, closer in zip(targets, resumes, closers, strict=True):
            opened = ti.xcom_pull(task_ids=resume.task_id)
            closed = ti.xcom_pull(task_ids=closer.task_id)
            hook = HuggingFaceEndpointHook(hf_conn_id, namespace=target["namespace"])
            # the endpoint and connection too, so the UI's page can group the nights by endpoint
            named = opened or closed or {}
            report = {
                **_report(hook, opened, closed, cap),
                "endpoint": named.get("name", target["name"]),
                "namespace": named.get("namespace", target["namespace"]),
                "hf_conn_id": hf_conn_id,
            }
            where = f"{hook.namespace}/{target['name']}"
            log.info("Endpoint %s: %s", where, report["summary"])
            if opened:
                asset = cost_asset(opened["namespace"], opened["name"])
                outlet_events[AssetAlias(COST_ALIAS)].add(asset, extra={**report, "run_id": ti.run_id})
            reports[where] = report
        if not several:
            return next(iter(reports.values()))
        return total_report(reports)

    return cost_report()


def _wire(
    group: TaskGroup,
    before: set[str],
    resumes: list[Any],
    ready: Any,
    closers: list[Any],
    report: Any,
    budget: HuggingFaceEndpointBudgetOperator | None,
    caps: WindowCaps,
    poke_interval: float,
) -> None:
    """
    Put the work the user added to ``group`` (what was not in ``before``) between ready and the closes.

    The resumes are setups, the closes and the report teardowns: they run whatever the work did.
    """
    work = [child for key, child in group.children.items() if key not in before]
    roots = [t for t in work if not any(u in work for u in t.upstream_list)]
    leaves = [t for t in work if not any(d in work for d in t.downstream_list)]
    resumes >> ready
    if work:
        ready >> roots
        for closer in closers:
            leaves >> closer
    else:
        ready >> closers
    closers >> report
    if budget is not None:
        ready >> budget >> report
        _watch_caps_in(work, caps, resumes[0].task_id, poke_interval)
    for resume in resumes:
        resume.as_setup()
    for closer in closers:
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
