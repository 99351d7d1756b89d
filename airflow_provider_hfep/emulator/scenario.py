"""
Scripted turns of events: "when endpoint X is resumed, it fails with this message".

A test sets rules through the control API before it runs a DAG; the emulator applies each rule at the
moment the management call it names succeeds, in the same request. So a test synchronises on the
event itself, not on a thread that polls the request log and hopes to act in time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.emulator.faults import Fault
from airflow_provider_hfep.emulator.settings import AVAILABILITY
from airflow_provider_hfep.emulator.state import STATES

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator.faults import FaultPlan
    from airflow_provider_hfep.emulator.state import Endpoint, World

ACTIONS = ("get", "create", "update", "resume", "pause", "scale-to-zero", "delete")


@dataclass
class AvailabilityChange:
    """
    How much of an instance type a region has, from a given time: the cloud's capacity moving.

    :param vendor: e.g. ``aws``.
    :param region: e.g. ``us-east-1``.
    :param instanceType: e.g. ``nvidia-a100`` (the API's key, as in the listing).
    :param status: ``available``, ``low_availability`` (a deployment may stay pending) or ``not_available``.
    :param in_seconds: from this many seconds after it is applied (0: at once).
    """

    vendor: str
    region: str
    instanceType: str
    status: str
    in_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.status not in AVAILABILITY:
            raise ValueError(f"status: {self.status!r} is not one of {', '.join(AVAILABILITY)}")
        if not all(isinstance(v, str) and v for v in (self.vendor, self.region, self.instanceType)):
            raise ValueError("vendor, region and instanceType: non-empty strings")
        if not isinstance(self.in_seconds, (int, float)) or self.in_seconds < 0:
            raise ValueError(f"in_seconds: {self.in_seconds!r} must be a number of seconds >= 0")

    def apply(self, world: World) -> None:
        world.set_availability((self.vendor, self.region, self.instanceType), self.status, self.in_seconds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rule:
    """
    What happens, once, after a management call succeeds.

    :param on: the call: ``get`` (a read of the endpoint), ``create``, ``update``, ``resume``,
        ``pause``, ``scale-to-zero`` or ``delete``.
    :param endpoint: only for this endpoint name (any, when ``None``).
    :param state: force the endpoint into this state (it then stays there until something moves it).
    :param message: the status message that goes with ``state``.
    :param faults: replace the injected faults with these (the :class:`Fault` fields as JSON).
    :param vanish: the endpoint disappears, as if deleted behind the client's back.
    :param availability: change the cloud's capacity (the :class:`AvailabilityChange` fields as JSON),
        each at once or ``in_seconds`` later.
    :param after: let this many matching calls pass before the rule applies.
    :param times: how many matching calls the rule applies to.
    """

    on: str
    endpoint: str | None = None
    state: str | None = None
    message: str | None = None
    faults: list[dict[str, Any]] | None = None
    vanish: bool = False
    availability: list[dict[str, Any]] | None = None
    after: int = 0
    times: int = 1
    seen: int = field(default=0)
    fired: int = field(default=0)

    def __post_init__(self) -> None:
        if self.on not in ACTIONS:
            raise ValueError(f"on: {self.on!r} is not one of {', '.join(ACTIONS)}")
        if self.state is not None and self.state not in STATES:
            raise ValueError(f"state: {self.state!r} is not one of {', '.join(sorted(STATES))}")
        if self.state is not None and self.on == "delete":
            raise ValueError("state: a deleted endpoint has no state to force")
        if self.faults is not None:
            for fault in self.faults:  # refuse a bad fault now, not when the rule fires
                Fault(**fault)
        for change in self.availability or ():  # refused now, not when the rule fires
            AvailabilityChange(**change)
        if self.times < 1 or self.after < 0:
            raise ValueError(f"times: {self.times} must be at least 1, after: {self.after} at least 0")
        if self.vanish and (self.state is not None or self.on == "delete"):
            raise ValueError("vanish: an endpoint that vanishes has no state to force")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Scenario:
    """The rules in force, and the world and fault plan they act on."""

    def __init__(self, world: World, faults: FaultPlan) -> None:
        self.world = world
        self.faults = faults
        self.rules: list[Rule] = []

    def fire(self, action: str, endpoint: Endpoint) -> None:
        """Apply the rules waiting for ``action`` on ``endpoint`` (called once the action took effect)."""
        for rule in self.rules:
            if rule.on != action or rule.fired >= rule.times:
                continue
            if rule.endpoint is not None and rule.endpoint != endpoint.name:
                continue
            rule.seen += 1
            if rule.seen <= rule.after:
                continue
            rule.fired += 1
            if rule.state is not None:
                self.world.force(endpoint, rule.state, rule.message)
            for change in rule.availability or ():
                AvailabilityChange(**change).apply(self.world)
            if rule.vanish:
                self.world.delete(endpoint)
            if rule.faults is not None:
                self.faults.replace([Fault(**fault) for fault in rule.faults], self.faults.seed)
