"""
The one polling loop behind every wait: ``wait()``, the sensor, the trigger and the waiting operators.

A plan over the calls (:mod:`airflow_provider_hfep.endpoints.calls`): read, ask the health route when
running, judge with the one "is it there yet" check (:func:`~airflow_provider_hfep.endpoints.waiting.assess`),
sleep (jittered) until an absolute deadline on the API's clock.
"""

from __future__ import annotations

import logging
import random
import time
from typing import TYPE_CHECKING

from airflow_provider_hfep.endpoints.errors import (
    EndpointsError,
    EndpointsTransportError,
    InvalidEndpointArgumentError,
    MalformedAnswerError,
    NotFoundError,
    RateLimitedError,
    ServerError,
)
from airflow_provider_hfep.endpoints.exchange import Plan, Sleep
from airflow_provider_hfep.endpoints.models import EndpointStatus, InferenceEndpoint
from airflow_provider_hfep.endpoints.payloads import validate_endpoint_name
from airflow_provider_hfep.endpoints.waiting import (
    DELETED,
    WAIT_TARGETS,
    Outcome,
    Progress,
    WatchResult,
    assess,
    needs_health_check,
    raise_for_result,
)

if TYPE_CHECKING:
    from airflow_provider_hfep.endpoints.calls import EndpointsApi

log = logging.getLogger(__name__)


def watch(
    api: EndpointsApi,
    *,
    name: str,
    namespace: str | None,
    target: str,
    end_time: float,
    poll_interval: float,
    check_health: bool = True,
    settle_until: float | None = None,
    max_consecutive_errors: int = 5,
    pending_deadline: float | None = None,
) -> Plan[WatchResult]:
    """
    Poll until the wait is over, and say how it ended; never raises for API trouble.

    The one polling loop behind ``wait()``, the trigger and the waiting operators.

    :param target: an endpoint state, or ``"deleted"`` (until the endpoint is gone).
    :param end_time: absolute deadline on the API's clock (:meth:`now`), so a restarted trigger
        keeps it and a skew between the worker's and the triggerer's clocks does not move it.
    :param settle_until: after an update, until this time (API clock) a ``running`` seen before any
        other state is the stale pre-update state, not the result (the service flips to
        ``updating`` a moment after answering the PUT).
    :param max_consecutive_errors: transient failures (after each request's own retries, a
        malformed answer included) tolerated in a row before giving up with ``error``.
    :param pending_deadline: absolute time (API clock) after which an endpoint still ``pending``
        (no replica starting: the cloud has no capacity for it) ends the wait with ``stuck_pending``,
        so that a hardware fallback can move it (``capacity_timeout``).
    """
    validate_endpoint_name(name)
    if target not in WAIT_TARGETS:
        raise InvalidEndpointArgumentError(
            "target_status", f"{target!r} is not a state", f"use one of {', '.join(sorted(WAIT_TARGETS))}"
        )
    if poll_interval <= 0:
        raise InvalidEndpointArgumentError(
            "poll_interval", f"{poll_interval} is not positive", "use seconds > 0"
        )
    started = time.monotonic()
    ns = namespace
    endpoint: InferenceEndpoint | None = None
    errors = 0
    left_target = False
    last_message = ""

    def result(outcome: Outcome, message: str, error: Exception | None = None) -> WatchResult:
        state = None if endpoint is None else str(endpoint.status)
        url = None if endpoint is None else endpoint.url
        return WatchResult(outcome, name, ns, state, message, url, endpoint, error)

    while True:
        try:
            ns = yield from api.resolve_namespace(namespace=namespace)
            endpoint = yield from api.get(name=name, namespace=ns)
            health = yield from _health(api, endpoint, target, check_health)
        except NotFoundError as exc:
            if target == DELETED:
                return WatchResult(Outcome.SUCCESS, name, ns, DELETED, f"Endpoint {name} is deleted", None)
            return result(Outcome.NOT_FOUND, f"Endpoint {name} not found in namespace {ns}: {exc}", exc)
        except (EndpointsTransportError, ServerError, RateLimitedError, MalformedAnswerError) as exc:
            errors += 1
            if errors > max_consecutive_errors:
                return result(
                    Outcome.ERROR, f"Gave up on {name} after {errors} failed reads in a row: {exc}", exc
                )
            progress = Progress(
                Outcome.WAITING,
                f"Reading {name} failed ({errors}/{max_consecutive_errors} tolerated): {exc}",
            )
        except EndpointsError as exc:  # authentication, permission, bad input: waiting will not fix it
            return result(Outcome.ERROR, str(exc), exc)
        else:
            errors = 0
            left_target = left_target or (target != DELETED and endpoint.status != EndpointStatus(target))
            now = api.now()
            progress = _judge(
                endpoint,
                health,
                name=name,
                target=target,
                now=now,
                settling=settle_until is not None and not left_target and now < settle_until,
                pending_deadline=pending_deadline,
            )
            if progress.done:
                return result(progress.outcome, progress.message)
        if progress.message != last_message:  # one log line per change, not per poll
            log.info("%s", progress.message)
            last_message = progress.message
        remaining = end_time - api.now()
        if remaining <= 0:
            return result(
                Outcome.TIMEOUT,
                f"{progress.message}; still not done after {time.monotonic() - started:.0f} s",
            )
        # +-10 % jitter: many waits started together (mapped sensors, a triggerer restart) drift
        # apart instead of hitting the API, and the connection pool, in lockstep.
        yield Sleep(min(poll_interval * random.uniform(0.9, 1.1), remaining))


def _health(
    api: EndpointsApi, endpoint: InferenceEndpoint, target: str, check_health: bool
) -> Plan[int | None]:
    """Ask the health route when the wait needs it: its status code (0: no answer), else ``None``."""
    if target == DELETED or not needs_health_check(endpoint, EndpointStatus(target), check_health):
        return None
    health = yield from api.health_status(endpoint=endpoint)
    return 0 if health is None else health


def _judge(
    endpoint: InferenceEndpoint,
    health: int | None,
    *,
    name: str,
    target: str,
    now: float,
    settling: bool,
    pending_deadline: float | None,
) -> Progress:
    """
    One read's verdict: the "is it there yet" check, and the two rules only a wait knows.

    :param settling: the endpoint has not left the target since the wait began and the settle time
        is not over: a ``running`` is the stale state from before an update, not the result.
    :param pending_deadline: past it, an endpoint still ``pending`` ends the wait (``stuck_pending``).
    """
    if target == DELETED:
        return Progress(Outcome.WAITING, f"Endpoint {name} still exists ({endpoint.status})")
    progress = assess(endpoint, EndpointStatus(target), health)
    if progress.outcome is Outcome.SUCCESS and settling:
        return Progress(Outcome.WAITING, f"Endpoint {name} still shows its state from before the update")
    if (
        pending_deadline is not None
        and progress.outcome is Outcome.WAITING
        and endpoint.status == EndpointStatus.PENDING
        and now >= pending_deadline
    ):
        server_says = f": {endpoint.message}" if endpoint.message else ""
        return Progress(
            Outcome.STUCK_PENDING,
            f"Endpoint {name} is still pending, no replica starting, past its capacity timeout{server_says}",
        )
    return progress


def wait(
    api: EndpointsApi,
    *,
    name: str,
    namespace: str | None,
    target: str,
    timeout: float | None,
    poll_interval: float,
    check_health: bool,
) -> Plan[InferenceEndpoint | None]:
    """:meth:`watch`, raising the typed error of any ending but success."""
    if timeout is not None and timeout < 0:
        raise InvalidEndpointArgumentError(
            "timeout", f"{timeout} is negative", "use seconds >= 0, or None to wait forever"
        )
    end_time = float("inf") if timeout is None else api.now() + timeout
    outcome = yield from watch(
        api,
        name=name,
        namespace=namespace,
        target=target,
        end_time=end_time,
        poll_interval=poll_interval,
        check_health=check_health,
    )
    raise_for_result(outcome)
    return outcome.endpoint
