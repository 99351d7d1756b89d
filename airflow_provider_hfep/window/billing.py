"""
The cost report of a batch window, apart from the DAG that runs it (no Airflow import).

The window is open from the resume (the endpoint leaves ``paused``) to the close (it is ``paused`` or
``scaledToZero`` again), both read from the endpoint's own status timestamps, as the resume and close
tasks returned them. Within it, what was billed is what the service reports: each replica's start
and stop (the replica listing), times the price per replica-hour. Where the listing says nothing,
the window's whole length times its replicas stands in: an upper bound, by design.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.costs import price_per_hour, replica_seconds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_hfep.endpoints.models import Replica

__all__ = ["billable_report", "price_per_hour"]


def _union_seconds(replicas: Sequence[Replica], since: float, until: float) -> float:
    """Seconds within ``[since, until]`` during which at least one replica ran."""
    spans = sorted(
        (max(since, datetime.fromisoformat(_iso(r.started_at)).timestamp()), min(until, _stop(r, until)))
        for r in replicas
        if r.started_at
    )
    total, reach = 0.0, since
    for start, stop in spans:
        if stop > max(start, reach):
            total += stop - max(start, reach)
            reach = stop
    return total


def _iso(text: str | None) -> str:
    return (text or "").replace("Z", "+00:00")


def _stop(replica: Replica, until: float) -> float:
    return datetime.fromisoformat(_iso(replica.stopped_at)).timestamp() if replica.stopped_at else until


def _hardware(endpoint: dict[str, Any]) -> str:
    where = f"{endpoint.get('vendor') or '?'}/{endpoint.get('region') or '?'}"
    return f"{where} {endpoint.get('instance_type') or '?'} {endpoint.get('instance_size') or '?'}"


def billable_report(
    opened: dict[str, Any] | None,
    closed: dict[str, Any] | None,
    price_per_hour: float | None,
    replicas: Sequence[Replica] | None = None,
    cap: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """
    Say what the endpoint was billed in a window: seconds, replicas, cost, and the cap that closed it.

    :param opened: the resume task's result (the endpoint as it answered the resume), if it ran.
    :param closed: the close task's result, if it ran.
    :param price_per_hour: the instance's price per replica-hour, if the hardware listing gave one.
    :param replicas: the replica listing read after the close (start and stop times): the truth of
        what ran; without it (or without times in it) the window's length times its replicas.
    :param cap: the cap that fired (the budget task's record), if one did.
    """
    fired = {"cap": cap["cap"], "cap_summary": cap.get("summary")} if cap else {"cap": None}
    if not opened:
        state = closed["status"] if closed else None
        now = f" It is {state}." if state else ""
        return {
            "billable_seconds": 0.0,
            "replica_seconds": 0.0,
            "state": state,
            "estimated_cost_usd": 0.0 if price_per_hour is not None else None,
            "summary": f"The endpoint was never started: the resume did not succeed.{now}",
            **fired,
        }
    started = datetime.fromisoformat(opened["updated_at"]).timestamp()
    minimum = max(1, int(opened.get("min_replica") or 0))
    hardware = _hardware(closed or opened)
    if not closed:
        return {
            "billable_seconds": None,
            "replica_seconds": None,
            "state": "unknown",
            "estimated_cost_usd": None,
            "replicas": minimum,
            "hardware": hardware,
            "summary": "The endpoint was resumed but the window did not close it: it may still be billing.",
            **fired,
        }
    ended = max(started, datetime.fromisoformat(closed["updated_at"]).timestamp())
    counted = replica_seconds(replicas or (), started, ended)
    if counted is not None:
        billable, source = _union_seconds(replicas or (), started, ended), "replicas"
        most = max(1, sum(1 for r in replicas or () if replica_seconds([r], started, ended)))
    else:
        billable, counted, source, most = ended - started, (ended - started) * minimum, "status", minimum
    cost = None if price_per_hour is None else round(counted / 3600 * price_per_hour, 6)
    price = "" if cost is None else f", ${cost:.4f} at ${price_per_hour}/h per replica"
    bound = "" if source == "replicas" else "at most "
    closed_by = f" {cap['summary']}." if cap else ""
    return {
        "billable_seconds": round(billable, 3),
        "replica_seconds": round(counted, 3),
        "state": closed["status"],
        "replicas": most,
        "hardware": hardware,
        "price_per_hour": price_per_hour,
        "estimated_cost_usd": cost,
        "source": source,
        "summary": (
            f"Billed {bound}{counted:.1f} replica-seconds on {hardware}{price}; the endpoint is now "
            f"{closed['status']}.{closed_by}"
        ),
        **fired,
    }
