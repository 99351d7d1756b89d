"""
The night's bill and its ceiling: what an endpoint has cost since its window opened, and which cap ends it.

Pure (no Airflow, no I/O). The budget trigger (in the triggerer) and the inference tasks (on the
workers) read the same things from the API (the endpoint's replicas and its price) and decide with
these functions, so they agree on when a cap fires: the work stops sending at that moment, and the
trigger closes the endpoint a moment later (``CLOSE_GRACE_SECONDS``), so no request reaches a closed
endpoint.

The spend is counted from what the service reports, never accumulated in memory: the replicas'
start and stop times since the window opened, times the price per replica-hour. A triggerer that
restarts reads the same replicas again and knows the spend so far.

And the net under it all, for when Airflow itself is gone: :func:`idle_stop_scaling` decides the
scaling that makes the service scale the endpoint to zero after some minutes without requests.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.models import EndpointStatus, parse_timestamp

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from airflow_provider_hfep.endpoints.models import HardwareOption, InferenceEndpoint, Replica

#: seconds between a cap firing (the work stops sending) and the endpoint's close
CLOSE_GRACE_SECONDS = 2.0
#: minutes a ``minReplica: 0`` endpoint idles before the service scales it to zero, unless it says
SERVICE_SCALE_TO_ZERO_MINUTES = 15
CAPS = ("max_cost", "max_runtime", "stop_at")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _epoch(text: str | None) -> float | None:
    return None if not text else parse_timestamp(text).timestamp()


def price_per_hour(offers: Iterable[HardwareOption], endpoint: dict[str, Any]) -> float | None:
    """
    Find the price per replica-hour of an endpoint's instance in the hardware listing.

    :param offers: the namespace's hardware listing.
    :param endpoint: the endpoint as a task returned it (``InferenceEndpoint.to_dict()``).
    """
    wanted = (endpoint["vendor"], endpoint["region"], endpoint["instance_type"], endpoint["instance_size"])
    for offer in offers:
        if (offer.vendor, offer.region, offer.instance_type, offer.instance_size) == wanted:
            return offer.price_per_hour
    return None


def replica_seconds(replicas: Sequence[Replica], since: float, until: float) -> float | None:
    """
    Add up the time each replica ran within ``[since, until]`` (epoch seconds), as the service reports it.

    ``None`` when no replica says when it started: the listing cannot tell, the caller estimates;
    0 when every replica listed is still ``pending`` (asked for, never started: no capacity yet).
    """
    timed = [r for r in replicas if r.started_at]
    if not timed:
        never_started = bool(replicas) and all(r.stage == "pending" and not r.stopped_at for r in replicas)
        return 0.0 if never_started else None
    total = 0.0
    for replica in timed:
        start = max(since, _epoch(replica.started_at) or since)
        stop = min(until, _epoch(replica.stopped_at) or until)
        total += max(0.0, stop - start)
    return total


@dataclass(frozen=True)
class Spend:
    """
    What an endpoint has cost since its window opened, and what it costs now.

    :param seconds: seconds since the window opened.
    :param replica_seconds: replica-seconds billed since then.
    :param replicas: replicas running now.
    :param price_per_hour: USD per replica-hour, ``None`` if the hardware listing does not say.
    """

    seconds: float
    replica_seconds: float
    replicas: int
    price_per_hour: float | None

    @property
    def cost(self) -> float | None:
        """USD so far, ``None`` without a price."""
        return None if self.price_per_hour is None else self.replica_seconds / 3600 * self.price_per_hour

    @property
    def cost_per_second(self) -> float:
        """USD per second at the replicas running now (0 without a price)."""
        return (self.price_per_hour or 0.0) * self.replicas / 3600


def spend_of(
    endpoint: InferenceEndpoint,
    replicas: Sequence[Replica],
    price_per_hour: float | None,
    since: float,
    now: float,
) -> Spend:
    """
    Count the spend from what the service reports: the replica listing, else the endpoint's status.

    Without replica times (a listing that does not say), the endpoint is taken to have run its
    ready replicas (at least one) since the window opened while it is in a billed state: an upper bound.
    """
    running = [r for r in replicas if not r.stopped_at and r.stage not in ("failed", "stopped")]
    counted = replica_seconds(replicas, since, now)
    ready = endpoint.ready_replicas or endpoint.target_replicas
    billing = endpoint.status in (
        EndpointStatus.INITIALIZING,
        EndpointStatus.RUNNING,
        EndpointStatus.UPDATING,
    )
    if counted is None:
        counted = (now - since) * max(1, ready) if billing else 0.0
    count = len(running) if replicas else (max(1, ready) if billing else 0)
    return Spend(max(0.0, now - since), counted, count, price_per_hour)


@dataclass(frozen=True)
class Budget:
    """
    A window's caps, resolved for one night: whichever comes first closes the endpoint.

    :param max_cost: USD the endpoint may cost in the window.
    :param max_runtime: seconds the window may stay open.
    :param stop_at: epoch (the API's clock) at which the window closes.
    """

    max_cost: float | None = None
    max_runtime: float | None = None
    stop_at: float | None = None

    def __post_init__(self) -> None:
        for name in CAPS:
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0
            ):
                raise InvalidEndpointArgumentError(
                    name, f"{value!r} is not a positive number", "use e.g. 12.5"
                )

    @property
    def capped(self) -> bool:
        return any(getattr(self, name) is not None for name in CAPS)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CapFired:
    """
    A cap that ended the window.

    :param cap: ``max_cost``, ``max_runtime`` or ``stop_at``.
    :param at: when it fired (epoch, the API's clock).
    :param limit: the cap's value (USD, seconds, or the epoch of ``stop_at``).
    :param cost: USD spent when it fired, if the price is known.
    :param seconds: seconds the window was open when it fired.
    """

    cap: str
    at: float
    limit: float
    cost: float | None
    seconds: float

    def describe(self) -> str:
        spent = "" if self.cost is None else f"; spent ${self.cost:.4f}"
        limit = {
            "max_cost": f"max_cost=${self.limit:g}",
            "max_runtime": f"max_runtime={self.limit:g} s",
            "stop_at": f"stop_at={datetime.fromtimestamp(self.limit, UTC).isoformat()}",
        }[self.cap]
        return f"{limit} reached after {self.seconds:.1f} s{spent}"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.describe()}


def next_cap(budget: Budget, since: float, now: float, spend: Spend) -> CapFired | None:
    """
    Tell the first cap to fire, at the current rate: when it fired (at or before ``now``) or will fire.

    ``None`` when no cap can fire (none set, or a cost cap with no price and nothing running).
    """
    candidates: list[CapFired] = []
    if budget.max_runtime is not None:
        candidates.append(
            CapFired("max_runtime", since + budget.max_runtime, budget.max_runtime, None, budget.max_runtime)
        )
    if budget.stop_at is not None:
        candidates.append(CapFired("stop_at", budget.stop_at, budget.stop_at, None, budget.stop_at - since))
    cost = spend.cost
    if budget.max_cost is not None and cost is not None:
        at: float | None = None
        if spend.cost_per_second > 0:  # when it was (or will be) reached, at the current rate
            at = now + (budget.max_cost - cost) / spend.cost_per_second
        elif cost >= budget.max_cost:  # reached, and nothing runs now
            at = now
        if at is not None:
            candidates.append(CapFired("max_cost", at, budget.max_cost, None, at - since))
    if not candidates:
        return None
    first = min(candidates, key=lambda c: c.at)
    spent = None if cost is None else cost + max(0.0, first.at - now) * spend.cost_per_second
    return CapFired(first.cap, first.at, first.limit, spent, max(0.0, first.at - since))


def clock_time_after(text: str, after: float, timezone: str = "UTC") -> float:
    """
    Resolve ``stop_at``: ``"HH:MM"`` (or ``HH:MM:SS``) in ``timezone``, the first such moment after ``after``.

    An ISO 8601 date and time (with its offset, else in ``timezone``) is taken as it is.
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidEndpointArgumentError(
            "timezone", f"{timezone!r} is not a time zone", "use an IANA name, e.g. 'Europe/Paris' or 'UTC'"
        ) from None
    match = _CLOCK.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        try:
            moment = datetime.fromisoformat(str(text))
        except ValueError:
            raise InvalidEndpointArgumentError(
                "stop_at",
                f"{text!r} is not a time of day",
                "use 'HH:MM' (e.g. '06:00'), or an ISO date and time",
            ) from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).timestamp()
    hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidEndpointArgumentError(
            "stop_at", f"{text!r} is not a time of day", "use 'HH:MM' between 00:00 and 23:59"
        )
    opened = datetime.fromtimestamp(after, zone)
    moment = datetime.combine(opened.date(), time(hour, minute, second), tzinfo=zone)
    if moment.timestamp() <= after:
        moment = datetime.combine(opened.date() + timedelta(days=1), time(hour, minute, second), tzinfo=zone)
    return moment.timestamp()


@dataclass(frozen=True)
class WindowCaps:
    """
    A window's caps as the DAG gives them, checked when it is parsed; :meth:`resolve` makes each night's :class:`Budget`.

    :param max_cost: USD the endpoint may cost in one window.
    :param max_runtime: seconds a window may stay open.
    :param stop_at: a time of day (``"06:00"``) in ``timezone``: the window closes at its first
        occurrence after it opened (or an ISO date and time).
    :param timezone: the IANA time zone of ``stop_at``.
    """

    max_cost: float | None = None
    max_runtime: float | None = None
    stop_at: str | None = None
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        Budget(self.max_cost, self.max_runtime)
        if self.stop_at is not None:
            clock_time_after(self.stop_at, 0.0, self.timezone)

    @property
    def capped(self) -> bool:
        return any(value is not None for value in (self.max_cost, self.max_runtime, self.stop_at))

    def resolve(self, opened_at: float) -> Budget:
        """Make the night's budget for a window opened at ``opened_at`` (epoch, the API's clock)."""
        stop = None if self.stop_at is None else clock_time_after(self.stop_at, opened_at, self.timezone)
        return Budget(self.max_cost, self.max_runtime, stop)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def opened_at(opened: dict[str, Any]) -> float:
    """When a window opened: the ``updated_at`` of the endpoint as the resume answered (the API's clock)."""
    return datetime.fromisoformat(opened["updated_at"]).timestamp()


def idle_stop_scaling(endpoint: InferenceEndpoint, minutes: int) -> dict[str, int] | None:
    """
    Decide the scaling that arms the safety net: the service scales the endpoint to zero after ``minutes`` idle.

    The service does it with no client involved (``minReplica: 0`` and ``scaleToZeroTimeout``), so it
    holds when Airflow is gone. Returns the update's arguments, or ``None`` when the endpoint's own
    setting is already as tight.
    """
    if endpoint.min_replica == 0:
        if (endpoint.scale_to_zero_timeout or SERVICE_SCALE_TO_ZERO_MINUTES) <= minutes:
            return None
    return {"min_replica": 0, "scale_to_zero_timeout": minutes}
