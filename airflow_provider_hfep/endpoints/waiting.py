"""
The one "is it there yet" check, shared by ``wait()``, the sensor, the trigger and the waiting operators.

Pure: it looks at an endpoint (and the health answer, when one was taken) and says whether the wait
is over, and how. Fetching and sleeping are the caller's business, sync or async.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from airflow_provider_hfep.endpoints.errors import (
    CapacityError,
    EndpointFailedError,
    EndpointPausedError,
    EndpointScaledToZeroError,
    EndpointsError,
    EndpointStateError,
    EndpointUpdateFailedError,
    EndpointWaitTimeoutError,
    NotFoundError,
)
from airflow_provider_hfep.endpoints.models import EndpointStatus, InferenceEndpoint


class Outcome(StrEnum):
    """How a wait stands after one look. The values are the trigger event statuses."""

    WAITING = "waiting"
    SUCCESS = "success"
    FAILED = "failed"
    UPDATE_FAILED = "update_failed"
    PAUSED = "paused"
    SCALED_TO_ZERO = "scaled_to_zero"
    STUCK_PENDING = "stuck_pending"
    NOT_FOUND = "not_found"
    TIMEOUT = "timeout"
    ERROR = "error"


#: A wait target that is not a state: the endpoint no longer exists.
DELETED = "deleted"
WAIT_TARGETS = frozenset({*(status.value for status in EndpointStatus), DELETED})


@dataclass(frozen=True)
class Progress:
    """
    The verdict of one look at an endpoint.

    :param outcome: whether the wait is over, and how.
    :param message: a sentence for logs and errors.
    """

    outcome: Outcome
    message: str

    @property
    def done(self) -> bool:
        return self.outcome is not Outcome.WAITING


_ERRORS: dict[Outcome, type[EndpointStateError]] = {
    Outcome.FAILED: EndpointFailedError,
    Outcome.UPDATE_FAILED: EndpointUpdateFailedError,
    Outcome.PAUSED: EndpointPausedError,
    Outcome.SCALED_TO_ZERO: EndpointScaledToZeroError,
}


def needs_health_check(endpoint: InferenceEndpoint, target: EndpointStatus, check_health: bool) -> bool:
    """Whether this look must also ask the data plane: only for a running endpoint awaited as running."""
    return check_health and target is EndpointStatus.RUNNING and endpoint.status == EndpointStatus.RUNNING


def assess(endpoint: InferenceEndpoint, target: EndpointStatus, health_status: int | None = None) -> Progress:
    """
    Judge one look at ``endpoint`` while waiting for ``target``.

    :param endpoint: the endpoint as just read from the API.
    :param target: the awaited state.
    :param health_status: the HTTP status of the health route, if it was asked (see
        :func:`needs_health_check`), 0 if it gave no answer; ``None`` means none is required.
    """
    state = endpoint.status
    name = endpoint.name
    server_says = f": {endpoint.message}" if endpoint.message else ""
    if state == EndpointStatus.FAILED and target is not EndpointStatus.FAILED:
        return Progress(Outcome.FAILED, f"Endpoint {name} failed to deploy{server_says}")
    if state == EndpointStatus.UPDATE_FAILED and target is not EndpointStatus.UPDATE_FAILED:
        return Progress(Outcome.UPDATE_FAILED, f"Endpoint {name} failed to update{server_says}")
    if state == target:
        if health_status is None or health_status == 200:
            return Progress(Outcome.SUCCESS, f"Endpoint {name} is {state}")
        answer = f"answered {health_status}" if health_status else "did not answer"
        return Progress(Outcome.WAITING, f"Endpoint {name} is running, its health route {answer}")
    if target is EndpointStatus.RUNNING:
        # huggingface_hub's wait() loops forever on these two: nothing will move them to running.
        if state == EndpointStatus.PAUSED:
            return Progress(Outcome.PAUSED, f"Endpoint {name} is paused: resume it first")
        if state == EndpointStatus.SCALED_TO_ZERO:
            return Progress(
                Outcome.SCALED_TO_ZERO,
                f"Endpoint {name} is scaled to zero: it starts on the first request; resume it first",
            )
    if not isinstance(state, EndpointStatus):
        # A state the service added after this provider: named in the log and, at the deadline, in
        # the timeout's message, never a silent wait.
        return Progress(
            Outcome.WAITING,
            f"Endpoint {name} is in state {state!r}, which this provider does not know; waiting for "
            f"{target} until the deadline",
        )
    return Progress(Outcome.WAITING, f"Endpoint {name} is {state}, waiting for {target}")


@dataclass(frozen=True)
class WatchResult:
    """
    How a whole wait ended: what a trigger reports in its one event.

    :param status: an :class:`Outcome` value other than ``waiting``.
    :param endpoint_name: the endpoint waited for.
    :param namespace: its namespace.
    :param state: its last seen state, ``None`` if never read.
    :param message: a sentence for logs and errors (the server's reason on failures).
    :param url: its last seen URL.
    :param endpoint: the last read endpoint (not serialized).
    :param error: the exception that ended the wait, for ``not_found`` and ``error`` (not serialized).
    """

    status: Outcome
    endpoint_name: str
    namespace: str | None
    state: str | None
    message: str
    url: str | None
    endpoint: InferenceEndpoint | None = field(default=None, compare=False, repr=False)
    error: Exception | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, endpoint: InferenceEndpoint, progress: Progress) -> WatchResult:
        """Make the result of a wait that ends with one look at ``endpoint``."""
        return cls(
            progress.outcome,
            endpoint.name,
            endpoint.namespace,
            str(endpoint.status),
            progress.message,
            endpoint.url,
            endpoint,
        )

    @classmethod
    def from_event(cls, event: dict[str, Any] | None) -> WatchResult:
        """Rebuild from a trigger event payload, refusing anything that is not one."""
        try:
            if not isinstance(event, dict):
                raise TypeError(event)
            status = Outcome(event["status"])
            if status is Outcome.WAITING:
                raise ValueError(status)
            return cls(
                status,
                event["endpoint_name"],
                event.get("namespace"),
                event.get("state"),
                event.get("message", ""),
                event.get("url"),
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"Not an endpoint trigger event: {event!r}") from None

    def to_event(self) -> dict[str, Any]:
        """Return the JSON-safe payload of a trigger event."""
        return {
            "status": str(self.status),
            "endpoint_name": self.endpoint_name,
            "namespace": self.namespace,
            "state": self.state,
            "message": self.message,
            "url": self.url,
        }


def raise_for_result(result: WatchResult) -> None:
    """Raise the typed error of a wait that did not succeed; do nothing on success."""
    if result.status is Outcome.SUCCESS:
        return
    state_error = _ERRORS.get(result.status)
    if state_error is not None:
        raise state_error(result.endpoint_name, result.state or "", result.message)
    if result.status is Outcome.TIMEOUT:
        raise EndpointWaitTimeoutError(result.message)
    if result.status is Outcome.STUCK_PENDING:
        raise CapacityError(
            result.message, "give hardware alternatives (hardware=[...]) or a longer capacity_timeout"
        )
    if result.error is not None:
        raise result.error
    if result.status is Outcome.NOT_FOUND:
        raise NotFoundError(404, result.message)
    raise EndpointsError(result.message)
