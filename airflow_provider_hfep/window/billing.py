"""
The cost arithmetic of a batch window, apart from the DAG that runs it (no Airflow import).

Billing runs from the resume (the endpoint leaves ``paused``) to the close (it is ``paused`` or
``scaledToZero`` again), both read from the endpoint's own status timestamps, as the resume and close
tasks returned them. That includes the few seconds of ``pending`` before ``initializing``, which are
not billed: an upper bound, by design.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow_provider_hfep.endpoints.models import HardwareOption


def price_per_hour(offers: Iterable[HardwareOption], endpoint: dict[str, Any]) -> float | None:
    """
    Find the price per replica-hour of an endpoint's instance in the hardware listing.

    :param offers: the namespace's hardware listing.
    :param endpoint: the endpoint as a task returned it (``raw`` holds its provider and compute).
    """
    compute, provider = endpoint["raw"]["compute"], endpoint["raw"]["provider"]
    wanted = (provider["vendor"], provider["region"], compute["instanceType"], compute["instanceSize"])
    for offer in offers:
        if (offer.vendor, offer.region, offer.instance_type, offer.instance_size) == wanted:
            return offer.price_per_hour
    return None


def billable_report(
    opened: dict[str, Any] | None, closed: dict[str, Any] | None, price_per_hour: float | None
) -> dict[str, Any]:
    """
    Say how long the endpoint was billable in a window, from what the resume and close tasks returned.

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
