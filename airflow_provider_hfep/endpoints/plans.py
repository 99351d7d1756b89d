"""
Every management call, described once as a *plan*: a generator of :class:`Send` and :class:`Sleep`.

A plan holds all the knowledge of a call: the path, the body, which answers to repeat and how long to
back off, how an error answer becomes a typed error, and the steps of calls made of several requests
("resume, or read it if it already runs", "create, and after a lost answer look before sending
again", "poll until the wait is over"). It does no I/O: :mod:`airflow_provider_hfep.endpoints.client`
carries the instructions out, once with ``httpx.Client`` and once with ``httpx.AsyncClient``, so the
sync and async clients cannot drift apart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_hfep.endpoints.errors import (
    EndpointsApiError,
    EndpointsError,
    EndpointsTimeoutError,
    EndpointsTransportError,
    InvalidEndpointArgumentError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ValidationFailedError,
    error_from_response,
)
from airflow_provider_hfep.endpoints.models import (
    EndpointListing,
    EndpointStatus,
    HardwareOption,
    InferenceEndpoint,
)
from airflow_provider_hfep.endpoints.payloads import (
    EndpointSpec,
    EndpointUpdate,
    validate_endpoint_name,
    validate_namespace,
)
from airflow_provider_hfep.endpoints.retry import (
    MANAGEMENT_RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)
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

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """Instruction: send one HTTP request and hand back the response (or throw the transport error)."""

    method: str
    url: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class Sleep:
    """Instruction: pause for ``seconds``."""

    seconds: float


Plan = Generator[Send | Sleep, Any, T]


class EndpointsApi:
    """
    The description of every management call, as plans. No I/O happens here.

    :param api_url: base of the management API, without ``/v2``.
    :param hub_url: base of the Hub, for ``/api/whoami-v2``.
    :param namespace: default namespace; when ``None`` it is resolved once from whoami.
    :param retry: the retry policy for requests that are safe to repeat.
    """

    def __init__(self, api_url: str, hub_url: str, namespace: str | None, retry: RetryPolicy) -> None:
        api_url = api_url.rstrip("/")
        self.api_base = api_url[: -len("/v2")] if api_url.endswith("/v2") else api_url
        self.hub_url = hub_url.rstrip("/")
        self.retry = retry
        self.namespace = validate_namespace(namespace) if namespace else None

    def _url(self, *segments: str) -> str:
        return f"{self.api_base}/v2/" + "/".join(quote(s, safe="") for s in segments)

    # -- the request layer ---------------------------------------------------------------------

    def exchange(
        self,
        send: Send,
        *,
        retry_statuses: frozenset[int] = MANAGEMENT_RETRYABLE_STATUSES,
        retry_transport: bool = True,
    ) -> Plan[httpx.Response]:
        """Send ``send``, repeating it on transient failures; return the last response, whatever its status."""
        retries = 0
        while True:
            try:
                response: httpx.Response = yield send
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}"
                if not retry_transport or retries >= self.retry.max_retries:
                    cls = (
                        EndpointsTimeoutError
                        if isinstance(exc, httpx.TimeoutException)
                        else EndpointsTransportError
                    )
                    tries = retries + 1
                    raise cls(
                        f"{send.method} {urlsplit(send.url).path}: no answer after {tries} tr{'y' if tries == 1 else 'ies'} ({reason}: {exc})"
                    ) from None
                delay = self.retry.delay(retries + 1)
            else:
                if response.status_code not in retry_statuses or retries >= self.retry.max_retries:
                    response.extensions["hfep_retries"] = retries
                    return response
                reason = f"HTTP {response.status_code}"
                delay = self.retry.delay(retries + 1, parse_retry_after(response.headers.get("retry-after")))
            retries += 1
            log.warning(
                "%s %s: %s, retry %d/%d in %.2f s",
                send.method,
                urlsplit(send.url).path,
                reason,
                retries,
                self.retry.max_retries,
                delay,
            )
            yield Sleep(delay)

    def request(self, send: Send, **retry: Any) -> Plan[httpx.Response]:
        """:meth:`exchange`, then raise the typed error of an error status."""
        response = yield from self.exchange(send, **retry)
        if response.is_error:
            response.read()
            error = error_from_response(response)
            error.retries = response.extensions.get("hfep_retries", 0)
            raise error
        return response

    # -- namespace -----------------------------------------------------------------------------

    def whoami(self) -> Plan[dict[str, Any]]:
        response = yield from self.request(Send("GET", f"{self.hub_url}/api/whoami-v2"))
        return response.json()

    def resolve_namespace(self, namespace: str | None = None) -> Plan[str]:
        """Choose the namespace: the argument, else the default, else the token's user (asked once)."""
        if namespace:
            return validate_namespace(namespace)
        if self.namespace is None:
            me = yield from self.whoami()
            if me.get("type") != "user":
                raise InvalidEndpointArgumentError(
                    "namespace",
                    f"the token belongs to {me.get('type')} {me.get('name')!r}, not to a user",
                    "set the namespace (connection extra 'namespace' or the namespace argument)",
                )
            self.namespace = me["name"]
        return self.namespace

    # -- management calls ----------------------------------------------------------------------

    def get_raw(self, namespace: str, name: str) -> Plan[dict[str, Any]]:
        response = yield from self.request(Send("GET", self._url("endpoint", namespace, name)))
        return response.json()

    def get(self, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace)
        raw = yield from self.get_raw(ns, name)
        return InferenceEndpoint.from_raw(raw, ns)

    def list_in(self, namespace: str) -> Plan[list[InferenceEndpoint]]:
        response = yield from self.request(Send("GET", self._url("endpoint", namespace)))
        return [InferenceEndpoint.from_raw(item, namespace) for item in response.json()["items"]]

    def list_endpoints(self, namespace: str | None) -> Plan[EndpointListing]:
        """One namespace, or ``*``: the user's and each organisation's, failures reported per namespace."""
        if namespace != "*":
            ns = yield from self.resolve_namespace(namespace)
            items = yield from self.list_in(ns)
            return EndpointListing(items)
        me = yield from self.whoami()
        namespaces = ([me["name"]] if me.get("type") == "user" else []) + [
            org["name"] for org in me.get("orgs", [])
        ]
        endpoints: list[InferenceEndpoint] = []
        failures: dict[str, Exception] = {}
        for ns in namespaces:
            try:
                endpoints += yield from self.list_in(ns)
            except EndpointsApiError as exc:
                log.warning("Could not list endpoints of namespace %s: %s", ns, exc)
                failures[ns] = exc
        return EndpointListing(endpoints, failures)

    def create(self, spec: EndpointSpec, namespace: str | None) -> Plan[InferenceEndpoint]:
        """POST the spec. Never blindly re-sent: after an ambiguous failure it first looks for the endpoint."""
        ns = yield from self.resolve_namespace(namespace)
        send = Send("POST", self._url("endpoint", ns), json=spec.to_body())
        attempts = 0
        while True:
            attempts += 1
            try:
                # 429 means "not processed": the one failure that is safe to repeat as is.
                response = yield from self.request(
                    send, retry_statuses=frozenset({429}), retry_transport=False
                )
                return InferenceEndpoint.from_raw(response.json(), ns)
            except (EndpointsTransportError, ServerError) as exc:
                if attempts > self.retry.max_retries:
                    raise
                log.warning(
                    "Create of %s/%s ended with %s; checking whether it exists before sending again",
                    ns,
                    spec.name,
                    exc,
                )
                yield Sleep(self.retry.delay(attempts))
                try:
                    raw = yield from self.get_raw(ns, spec.name)
                except NotFoundError:
                    continue  # it certainly was not created: sending again cannot duplicate it
                found = InferenceEndpoint.from_raw(raw, ns)
                if found.repository != spec.repository:
                    raise
                return found

    def update(self, name: str, changes: EndpointUpdate, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace)
        # A PUT is a deep merge: applying the same one twice gives the same endpoint, so it may be retried.
        response = yield from self.request(
            Send("PUT", self._url("endpoint", ns, name), json=changes.to_body())
        )
        return InferenceEndpoint.from_raw(response.json(), ns)

    def _action(self, name: str, action: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace)
        response = yield from self.request(Send("POST", self._url("endpoint", ns, name, action)))
        return InferenceEndpoint.from_raw(response.json(), ns)

    def pause(self, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        return (yield from self._action(name, "pause", namespace))

    def scale_to_zero(self, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        return (yield from self._action(name, "scale-to-zero", namespace))

    def resume(self, name: str, namespace: str | None, running_ok: bool) -> Plan[InferenceEndpoint]:
        """Resume; with ``running_ok`` an "already running" refusal reads the endpoint instead of failing."""
        try:
            return (yield from self._action(name, "resume", namespace))
        except ValidationFailedError as exc:
            if not (running_ok and "already running" in exc.server_message):
                raise
        return (yield from self.get(name, namespace))

    def delete(self, name: str, namespace: str | None, missing_ok: bool) -> Plan[None]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace)
        try:
            yield from self.request(Send("DELETE", self._url("endpoint", ns, name)))
        except NotFoundError as exc:
            # After a retried DELETE a 404 means an earlier try went through.
            if not (missing_ok or exc.retries):
                raise

    def list_hardware(self, namespace: str | None) -> Plan[list[HardwareOption]]:
        ns = yield from self.resolve_namespace(namespace)
        response = yield from self.request(Send("GET", self._url("provider", ns)))
        return HardwareOption.list_from_raw(response.json())

    # -- the data plane and waiting ------------------------------------------------------------

    def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> Plan[int | None]:
        """Ask the endpoint's health route; ``None`` if it has no URL or no answer came."""
        url = endpoint.health_url
        if url is None:
            return None
        try:
            response = yield from self.exchange(
                Send("GET", url, timeout=timeout), retry_statuses=frozenset(), retry_transport=False
            )
        except EndpointsTransportError as exc:
            log.info("Health check of %s got no answer: %s", endpoint.name, exc)
            return None
        return response.status_code

    def watch(
        self,
        name: str,
        namespace: str | None,
        target: str,
        end_time: float,
        poll_interval: float,
        check_health: bool = True,
        settle_until: float | None = None,
        max_consecutive_errors: int = 5,
    ) -> Plan[WatchResult]:
        """
        Poll until the wait is over, and say how it ended; never raises for API trouble.

        The one polling loop behind ``wait()``, the trigger and the waiting operators.

        :param target: an endpoint state, or ``"deleted"`` (until the endpoint is gone).
        :param end_time: absolute deadline (epoch seconds), so a restarted trigger keeps it.
        :param settle_until: after an update, until this epoch a ``running`` seen before any other
            state is the stale pre-update state, not the result (the service flips to ``updating``
            a moment after answering the PUT).
        :param max_consecutive_errors: transient failures (after each request's own retries) tolerated
            in a row before giving up with ``error``.
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
        started = time.time()
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
                ns = yield from self.resolve_namespace(namespace)
                endpoint = yield from self.get(name, ns)
            except NotFoundError as exc:
                if target == DELETED:
                    return WatchResult(
                        Outcome.SUCCESS, name, ns, DELETED, f"Endpoint {name} is deleted", None
                    )
                return result(Outcome.NOT_FOUND, f"Endpoint {name} not found in namespace {ns}: {exc}", exc)
            except (EndpointsTransportError, ServerError, RateLimitedError) as exc:
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
                if target == DELETED:
                    progress = Progress(Outcome.WAITING, f"Endpoint {name} still exists ({endpoint.status})")
                else:
                    status_target = EndpointStatus(target)
                    health = None
                    if needs_health_check(endpoint, status_target, check_health):
                        health = yield from self.health_status(endpoint)
                        health = 0 if health is None else health
                    progress = assess(endpoint, status_target, health)
                    left_target = left_target or endpoint.status != status_target
                    if (
                        progress.outcome is Outcome.SUCCESS
                        and settle_until
                        and not left_target
                        and time.time() < settle_until
                    ):
                        progress = Progress(
                            Outcome.WAITING, f"Endpoint {name} still shows its state from before the update"
                        )
                if progress.done:
                    return result(progress.outcome, progress.message)
            if progress.message != last_message:  # one log line per change, not per poll
                log.info("%s", progress.message)
                last_message = progress.message
            remaining = end_time - time.time()
            if remaining <= 0:
                return result(
                    Outcome.TIMEOUT, f"{progress.message}; still not done after {time.time() - started:.0f} s"
                )
            # +-10 % jitter: many waits started together (mapped sensors, a triggerer restart) drift
            # apart instead of hitting the API, and the connection pool, in lockstep.
            yield Sleep(min(poll_interval * random.uniform(0.9, 1.1), remaining))

    def wait(
        self,
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
        end_time = float("inf") if timeout is None else time.time() + timeout
        outcome = yield from self.watch(name, namespace, target, end_time, poll_interval, check_health)
        raise_for_result(outcome)
        return outcome.endpoint
