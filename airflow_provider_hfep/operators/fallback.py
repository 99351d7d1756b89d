"""
The moves of a hardware fallback: which choice an endpoint runs on, and moving it to the next.

Shared by the create and resume operators and by the window's ``ready`` task. Each move goes
through the quota pre-flight (``check_capacity``: the hardware listing's availability and quota),
and every choice that fails is recorded with why (``tried``), for the log, the task's result and the
final error. The choice reached is the hardware the endpoint is on: it survives a killed worker, so a
retry starts there (see :func:`start_index`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import CapacityError, EndpointsApiError, NotFoundError
from airflow_provider_hfep.endpoints.hardware import index_of, is_capacity_message, tried_summary
from airflow_provider_hfep.endpoints.models import EndpointStatus
from airflow_provider_hfep.endpoints.waiting import Outcome, WatchResult

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable, Sequence

    from airflow_provider_hfep.endpoints.client import EndpointsClient
    from airflow_provider_hfep.endpoints.hardware import HardwareChoice
    from airflow_provider_hfep.endpoints.models import InferenceEndpoint

#: states in which an endpoint holds no hardware: a move is a compute change and nothing starts
STOPPED = (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO, EndpointStatus.FAILED)


def start_index(
    choices: Sequence[HardwareChoice], endpoint: InferenceEndpoint | None, *, resume_reached: bool
) -> int:
    """
    Say which choice to start from: the first, or (a retry, or ``hardware_sticky``) the one it is on.

    :param resume_reached: a retry of the task, or ``hardware_sticky``: the choice the endpoint is on
        now (the one an earlier try reached, or last night's) is where to start.
    """
    if resume_reached and endpoint is not None:
        return index_of(choices, endpoint) or 0
    return 0


def needs_move(result: WatchResult) -> bool:
    """Tell whether a wait ended for lack of capacity: stuck pending, or failed with the service's capacity message."""
    if result.status is Outcome.STUCK_PENDING:
        return True
    return result.status in (Outcome.FAILED, Outcome.UPDATE_FAILED) and is_capacity_message(result.message)


class HardwareFallback:
    """
    One endpoint's walk down its hardware choices.

    :param client: the management client.
    :param name: the endpoint.
    :param namespace: its namespace.
    :param choices: the ordered choices.
    :param check_capacity: run the quota pre-flight before each move.
    :param log: where each failed choice is told, with the next one.
    :param tried: what earlier moves recorded (a deferral carries it over).
    :param close: what is done to an endpoint no choice could run: ``pause``, ``scale_to_zero`` or
        ``none`` (the client's methods).
    """

    def __init__(
        self,
        client: EndpointsClient,
        name: str,
        namespace: str,
        choices: Sequence[HardwareChoice],
        *,
        check_capacity: bool,
        log: logging.Logger | Any,
        tried: Sequence[dict[str, Any]] = (),
        close: str = "pause",
    ) -> None:
        self.client = client
        self.name = name
        self.namespace = namespace
        self.choices = tuple(choices)
        self.check_capacity = check_capacity
        self.log = log
        self.tried: list[dict[str, Any]] = [dict(entry) for entry in tried]
        self.close_action = close

    def _refusal(self, index: int, replicas: int, current: InferenceEndpoint | None) -> str | None:
        """Run the quota pre-flight on choice ``index``: the reason it cannot be had now, or ``None``."""
        if not self.check_capacity:
            return None
        choice = self.choices[index]
        held = 0
        if (
            current is not None
            and current.status not in STOPPED
            and current.instance_type == choice.instance_type
        ):
            size = current.instance_size or "x1"
            held = (int(size[1:]) if size[1:].isdigit() else 1) * max(1, current.target_replicas or 0)
        try:
            self.client.check_capacity(
                vendor=choice.vendor,
                region=choice.region,
                instance_type=choice.instance_type,
                instance_size=choice.instance_size,
                replicas=replicas,
                already_held=held,
                namespace=self.namespace,
            )
        except CapacityError as exc:
            return exc.reason
        except EndpointsApiError as exc:
            self.log.warning("Could not check the quota (going ahead, the service will judge): %s", exc)
        return None

    def record(self, index: int, reason: str) -> None:
        """Record that choice ``index`` failed and why (the log line comes with the next choice)."""
        self.tried.append({"choice": index + 1, "hardware": self.choices[index].label, "reason": reason})

    def pick(self, start: int, replicas: int, current: InferenceEndpoint | None) -> int:
        """
        Return the first choice from ``start`` that the pre-flight lets through; say each one skipped.

        Raises :class:`CapacityError` listing every choice tried, and why, when none is left.
        """
        for index in range(start, len(self.choices)):
            if self.tried and self.tried[-1]["choice"] == index:  # the previous one failed: say what is next
                self.log.warning(
                    "Hardware choice %s/%s (%s) failed: %s. Trying choice %s/%s (%s)",
                    index,
                    len(self.choices),
                    self.tried[-1]["hardware"],
                    self.tried[-1]["reason"],
                    index + 1,
                    len(self.choices),
                    self.choices[index].label,
                )
            reason = self._refusal(index, replicas, current)
            if reason is None:
                return index
            self.record(index, f"refused before deploy: {reason}")
        raise self.exhausted()

    def exhausted(self) -> CapacityError:
        """Make the error of an endpoint no choice could run: every choice tried, and why."""
        if self.tried:
            last = self.tried[-1]
            self.log.error(
                "Hardware choice %s/%s (%s) failed: %s. No choice left",
                last["choice"],
                len(self.choices),
                last["hardware"],
                last["reason"],
            )
        return CapacityError(
            f"no hardware choice could run endpoint {self.namespace}/{self.name}: {tried_summary(self.tried)}",
            "add alternatives to hardware=[...], give capacity_timeout more time, or retry later",
        )

    def move(self, current: InferenceEndpoint, index: int) -> InferenceEndpoint:
        """
        Put the endpoint on choice ``index`` (an update of its compute) and have it deploy there.

        A stopped endpoint (paused, scaled to zero, failed) takes the change without starting and is
        then resumed; a pending one is rescheduled by the update itself.
        """
        choice = self.choices[index]
        endpoint = current
        if not choice.runs(current):
            endpoint = self.client.update(self.name, choice.update(), namespace=self.namespace)
        if current.status == EndpointStatus.FAILED:
            endpoint = self.client.resume(self.name, namespace=self.namespace, running_ok=True)
        self.log.info(
            "Endpoint %s/%s on hardware choice %s/%s: %s",
            self.namespace,
            self.name,
            index + 1,
            len(self.choices),
            choice.label,
        )
        return endpoint

    def start_on(
        self,
        start: int,
        replicas: int,
        current: InferenceEndpoint | None,
        deploy: Callable[[int], InferenceEndpoint],
    ) -> tuple[int, InferenceEndpoint]:
        """
        Deploy on the first choice from ``start`` that the pre-flight and then the service accept.

        ``deploy(index)`` sends the request; one the service refuses with its capacity message moves
        on to the next choice. No choice left: the endpoint is closed and the error lists them all.
        """
        try:
            index = self.pick(start, replicas, current)
            while True:
                try:
                    return index, deploy(index)
                except EndpointsApiError as exc:
                    if not is_capacity_refusal(exc):
                        raise
                    self.record(index, f"refused by the service: {exc.server_message}")
                    index = self.pick(index + 1, replicas, current)
        except CapacityError:
            self.close()
            raise

    def next_choice(
        self, index: int, result: WatchResult, capacity_timeout: float
    ) -> tuple[int, InferenceEndpoint]:
        """Record why choice ``index`` failed (the wait's ``result``) and move the endpoint to the next one it can have."""
        current = self.client.get(self.name, namespace=self.namespace)
        says = current.message or result.message  # the service's own words
        if result.status is Outcome.STUCK_PENDING:
            reason = f"still pending after capacity_timeout ({capacity_timeout:g} s): {says}"
        else:
            reason = f"failed for capacity: {says}"
        self.record(index, reason)
        return self.start_on(index + 1, current.min_replica, current, lambda i: self.move(current, i))

    def close(self) -> None:
        """Close an endpoint no choice could run (``close``): left pending, it would wait for nothing."""
        if self.close_action == "none":
            return
        try:
            getattr(self.client, self.close_action)(self.name, namespace=self.namespace)
        except NotFoundError:
            return
        except EndpointsApiError as exc:
            self.log.warning(
                "Could not %s endpoint %s/%s: %s", self.close_action, self.namespace, self.name, exc
            )
            return
        self.log.warning(
            "No hardware choice left: applied %s to %s/%s", self.close_action, self.namespace, self.name
        )

    def result(self, index: int) -> dict[str, Any]:
        """Say what the task returns beside the endpoint: the hardware used, its position, what failed before."""
        return {
            "hardware": self.choices[index].to_json(),
            "hardware_choice": index + 1,
            "hardware_tried": list(self.tried),
        }


def is_capacity_refusal(exc: EndpointsApiError) -> bool:
    """Tell whether the service refused a change for lack of capacity (its message says so)."""
    return is_capacity_message(exc.server_message)
