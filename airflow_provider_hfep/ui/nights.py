"""
The nights: each window run's cost report, as the page shows it (no Airflow import).

A window's ``cost_report`` task returns the report (XCom ``return_value``); its inference tasks push a
``summary`` (results and failures). ``nights_of`` reads one report (a window over several endpoints
reports each: one night each), ``night_of`` one endpoint's, ``with_work`` adds the work's
counts, and the rest select and add up what the page shows.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "REPORT_TASK",
    "CostSeries",
    "LastNight",
    "Night",
    "cost_by_day",
    "dags_using",
    "last_nights",
    "night_of",
    "nights_of",
    "select",
    "with_work",
]

#: the window's report task's own id (its full id is ``<group_id>.cost_report``)
REPORT_TASK = "cost_report"


def _decoded(value: Any) -> Any:
    """Read an XCom value as stored: JSON text (set through the XCom backend) or already decoded."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Night:
    """
    One window run and what it cost.

    :param dag_id: the DAG.
    :param run_id: the DAG run.
    :param run_after: when the run was due (aware); its UTC date is the night's.
    :param run_state: the run's state.
    :param group: the window's task group id (the report task's id without ``.cost_report``).
    :param endpoint: the endpoint's name (``None`` in reports written before 0.5.0).
    :param namespace: its namespace, likewise.
    :param hf_conn_id: the connection the window used, likewise.
    :param hardware: vendor/region, instance type and size, as the report says.
    :param billable_seconds: seconds at least one replica ran (``None``: unknown, the window did not close).
    :param cost: the estimated cost in USD (``None``: no price, or unknown).
    :param cap: the cap that closed the endpoint (``max_cost``, ``max_runtime``, ``stop_at``), if one did.
    :param summary: the report's one line.
    :param results: inputs answered by the window's inference tasks (``None``: none pushed a summary).
    :param failures: inputs that failed in them.
    """

    dag_id: str
    run_id: str
    run_after: datetime
    run_state: str | None
    group: str
    endpoint: str | None
    namespace: str | None
    hf_conn_id: str | None
    hardware: str | None
    billable_seconds: float | None
    cost: float | None
    cap: str | None
    summary: str
    results: int | None = None
    failures: int | None = None

    @property
    def key(self) -> str:
        """The endpoint as ``namespace/name`` (what the endpoints table and the chart group by)."""
        return f"{self.namespace or '?'}/{self.endpoint or '?'}"

    @property
    def day(self) -> date:
        return self.run_after.date()


def night_of(
    *, dag_id: str, run_id: str, run_after: datetime, run_state: str | None, task_id: str, value: Any
) -> Night | None:
    """
    Read one cost report (an XCom value of a ``cost_report`` task); ``None`` for anything else.

    :param dag_id: the DAG of the XCom.
    :param run_id: its run.
    :param run_after: the run's due time (aware).
    :param run_state: the run's state.
    :param task_id: the task that pushed it (``<group>.cost_report``).
    :param value: the XCom value as stored.
    """
    report = _decoded(value)
    if not isinstance(report, dict) or "billable_seconds" not in report or "summary" not in report:
        return None
    group = task_id[: -len(REPORT_TASK)].rstrip(".") if task_id.endswith(REPORT_TASK) else task_id
    return Night(
        dag_id=dag_id,
        run_id=run_id,
        run_after=run_after,
        run_state=run_state,
        group=group,
        endpoint=report.get("endpoint"),
        namespace=report.get("namespace"),
        hf_conn_id=report.get("hf_conn_id"),
        hardware=report.get("hardware"),
        billable_seconds=_number(report.get("billable_seconds")),
        cost=_number(report.get("estimated_cost_usd")),
        cap=report.get("cap"),
        summary=str(report.get("summary") or ""),
    )


def nights_of(
    *, dag_id: str, run_id: str, run_after: datetime, run_state: str | None, task_id: str, value: Any
) -> list[Night]:
    """
    Read one window's cost report: a night for each endpoint it reports (the arguments of :func:`night_of`).

    A window over several endpoints reports each under ``endpoints`` beside their total.
    """
    report = _decoded(value)
    each = report.get("endpoints") if isinstance(report, dict) else None
    parts = list(each.values()) if isinstance(each, dict) else [report]
    read = [
        night_of(
            dag_id=dag_id,
            run_id=run_id,
            run_after=run_after,
            run_state=run_state,
            task_id=task_id,
            value=part,
        )
        for part in parts
    ]
    return [night for night in read if night is not None]


def with_work(nights: Sequence[Night], summaries: Iterable[tuple[str, str, str, Any]]) -> list[Night]:
    """
    Add the results and failures of each window's inference tasks (their ``summary`` XComs).

    :param nights: the nights.
    :param summaries: ``(dag_id, run_id, task_id, value)`` of ``summary`` XComs; a task counts for the
        window whose group holds it; values without ``succeeded`` and ``failed`` counts are ignored.
    """
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for night in nights:
        groups[(night.dag_id, night.run_id)].append(night.group)
    for dag_id, run_id, task_id, value in summaries:
        summary = _decoded(value)
        if not isinstance(summary, dict):
            continue
        succeeded, failed = summary.get("succeeded"), summary.get("failed")
        if not isinstance(succeeded, int) or not isinstance(failed, int):
            continue
        # the innermost window holding the task (groups can nest)
        holders = [g for g in groups.get((dag_id, run_id), ()) if not g or task_id.startswith(f"{g}.")]
        if holders:
            tally = counts[(dag_id, run_id, max(holders, key=len))]
            tally[0] += succeeded
            tally[1] += failed
    return [
        replace(night, results=found[0], failures=found[1])
        if (found := counts.get((night.dag_id, night.run_id, night.group)))
        else night
        for night in nights
    ]


def select(
    nights: Iterable[Night],
    *,
    dag_id: str | None = None,
    since: date | None = None,
    until: date | None = None,
    hf_conn_id: str | None = None,
) -> list[Night]:
    """
    Keep the nights of a DAG, between two dates (inclusive, UTC), of a connection; newest first.

    A report that names no connection (written before 0.5.0) is kept for every connection.
    """
    kept = [
        n
        for n in nights
        if (not dag_id or n.dag_id == dag_id)
        and (since is None or n.day >= since)
        and (until is None or n.day <= until)
        and (not hf_conn_id or n.hf_conn_id in (None, hf_conn_id))
    ]
    return sorted(kept, key=lambda n: (n.run_after, n.dag_id, n.run_id), reverse=True)


def dags_using(nights: Iterable[Night]) -> dict[str, list[str]]:
    """Map each endpoint (``namespace/name``) to the DAGs whose windows ran it, sorted."""
    found: dict[str, set[str]] = defaultdict(set)
    for night in nights:
        if night.endpoint:
            found[night.key].add(night.dag_id)
    return {key: sorted(dags) for key, dags in found.items()}


@dataclass(frozen=True)
class LastNight:
    """
    An endpoint's latest night: its day and what its windows that day cost.

    :param day: the day (UTC).
    :param cost: USD, summed over the day's windows whose cost is known (``None``: none is).
    :param windows: how many windows ran it that day.
    """

    day: date
    cost: float | None
    windows: int


def last_nights(nights: Iterable[Night]) -> dict[str, LastNight]:
    """Map each endpoint (``namespace/name``) to its latest night (every window of that day)."""
    by_day: dict[str, dict[date, list[Night]]] = defaultdict(lambda: defaultdict(list))
    for night in nights:
        if night.endpoint:
            by_day[night.key][night.day].append(night)
    latest = {}
    for key, days in by_day.items():
        day = max(days)
        costs = [n.cost for n in days[day] if n.cost is not None]
        latest[key] = LastNight(day=day, cost=sum(costs) if costs else None, windows=len(days[day]))
    return latest


@dataclass(frozen=True)
class CostSeries:
    """
    What each endpoint cost each day over a period: the chart's data.

    :param days: the days, oldest first.
    :param endpoints: the endpoints (``namespace/name``) that cost anything, by total cost, highest first.
    :param cost: ``(endpoint, day)`` -> USD, summed over that day's windows.
    """

    days: tuple[date, ...]
    endpoints: tuple[str, ...]
    cost: dict[tuple[str, date], float]

    def total(self, day: date) -> float:
        return sum(self.cost.get((endpoint, day), 0.0) for endpoint in self.endpoints)


def cost_by_day(nights: Iterable[Night], *, end: date, days: int = 30) -> CostSeries:
    """
    Add up the cost per endpoint and day over the ``days`` days ending with ``end`` (UTC dates).

    Nights without a known cost add nothing (the table says why).
    """
    span = tuple(end - timedelta(days=back) for back in range(days - 1, -1, -1))
    cost: dict[tuple[str, date], float] = defaultdict(float)
    for night in nights:
        if night.cost is not None and span[0] <= night.day <= end:
            cost[(night.key, night.day)] += night.cost
    totals: dict[str, float] = defaultdict(float)
    for (endpoint, _), usd in cost.items():
        totals[endpoint] += usd
    endpoints = tuple(sorted(totals, key=lambda e: (-totals[e], e)))
    return CostSeries(days=span, endpoints=endpoints, cost=dict(cost))
