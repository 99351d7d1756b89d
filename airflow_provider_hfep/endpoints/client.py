"""
Sync and async clients of the Inference Endpoints management API, over httpx.

Every call is described once, as a *plan*: a generator that yields :class:`Send` and :class:`Sleep`
instructions and returns the result. The plans hold all the knowledge (paths, bodies, retries,
error mapping, multi-step calls such as "resume, or read it if already running"); the two clients
only carry the instructions out, one with ``httpx.Client`` and ``time.sleep``, the other with
``httpx.AsyncClient`` and ``asyncio.sleep``. So the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import ssl
import time
import weakref
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from airflow_provider_hfep import __version__
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

DEFAULT_API_URL = "https://api.endpoints.huggingface.cloud"
DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_TIMEOUT = 30.0
USER_AGENT = f"airflow-provider-hfep/{__version__}; httpx/{httpx.__version__}"


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


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where plain http cannot leak anything)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(field_name: str, url: str, allow_insecure_http: bool) -> str:
    """
    Normalise a base URL and refuse plain http to another machine unless explicitly allowed.

    The token travels in every request: over plain http to a remote host anyone on the path reads it.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidEndpointArgumentError(field_name, "is empty", "set an https:// URL")
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InvalidEndpointArgumentError(
            field_name, f"scheme {scheme!r} is not http(s)", "use an https:// URL"
        )
    if scheme == "http" and not allow_insecure_http and not is_loopback(url):
        raise InvalidEndpointArgumentError(
            field_name,
            f"{url} is plain http to another machine, which would expose the token",
            "use https://, or set allow_insecure_http=True if you really mean it",
        )
    return url


class _BearerAuth(httpx.Auth):
    """Adds the token to each request; keeps it out of ``repr`` and of the client's default headers."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request):
        request.headers["authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"


class _SharedAsyncTransport(httpx.AsyncBaseTransport):
    """A connection pool that outlives the clients using it: closing a client leaves it open."""

    def __init__(self, inner: httpx.AsyncHTTPTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Leave the pool to the other clients of this event loop; it goes with the loop."""


_SHARED_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedAsyncTransport]] = (
    weakref.WeakKeyDictionary()
)


def tls_verification(verify: bool | str) -> bool | ssl.SSLContext:
    """Httpx's form of a TLS setting: ``True``/``False``, or a CA bundle path made into an SSL context."""
    if not isinstance(verify, str):
        return bool(verify)
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    if os.path.isfile(verify):
        return ssl.create_default_context(cafile=verify)
    raise InvalidEndpointArgumentError(
        "verify",
        f"{verify!r} is not a CA bundle file or directory",
        "use true, false, or the path of a PEM CA bundle",
    )


def shared_async_transport(verify: bool | str = True) -> httpx.AsyncBaseTransport:
    """
    The connection pool shared by every async client of the running event loop (and TLS setting).

    A triggerer runs hundreds of triggers in one loop; each opening its own pool would hold one TCP
    (and TLS) connection per trigger. Credentials stay on each client, never in the pool.
    """
    pools = _SHARED_POOLS.setdefault(asyncio.get_running_loop(), {})
    key = repr(verify)
    if key not in pools:
        pools[key] = _SharedAsyncTransport(
            httpx.AsyncHTTPTransport(
                verify=tls_verification(verify),
                limits=httpx.Limits(max_connections=10, max_keepalive_connections=10),
            )
        )
    return pools[key]


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
        """The namespace to act in: the argument, else the default, else the token's user (asked once)."""
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
            if not (missing_ok or getattr(exc, "retries", 0)):
                raise

    def list_hardware(self, namespace: str | None) -> Plan[list[HardwareOption]]:
        ns = yield from self.resolve_namespace(namespace)
        response = yield from self.request(Send("GET", self._url("provider", ns)))
        return HardwareOption.list_from_raw(response.json())

    # -- the data plane and waiting ------------------------------------------------------------

    def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> Plan[int | None]:
        """The HTTP status of the endpoint's health route; ``None`` if it has no URL or no answer came."""
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


class _ClientBase:
    """What both clients share: settings, validation, and the plans."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str = DEFAULT_API_URL,
        hub_url: str = DEFAULT_HUB_URL,
        namespace: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        if not isinstance(token, str) or not token.strip():
            raise InvalidEndpointArgumentError(
                "token", "is empty", "set the connection's Token field (its password)"
            )
        if not timeout or timeout <= 0:
            raise InvalidEndpointArgumentError(
                "timeout", f"{timeout!r} is not a positive number of seconds", "use e.g. 30"
            )
        self._api = EndpointsApi(
            check_base_url("api_url", api_url, allow_insecure_http),
            check_base_url("hub_url", hub_url, allow_insecure_http),
            namespace,
            retry or RetryPolicy(),
        )
        self._verify = verify
        self._http_options: dict[str, Any] = {
            "auth": _BearerAuth(token),
            "timeout": httpx.Timeout(timeout),
            "verify": tls_verification(verify),
            "headers": {"user-agent": USER_AGENT},
            "follow_redirects": True,
        }

    @property
    def api_url(self) -> str:
        return self._api.api_base

    @property
    def auth(self) -> httpx.Auth:
        """The token as an ``httpx.Auth``, for talking to the endpoints' data planes (never the token itself)."""
        return self._http_options["auth"]

    @property
    def verify(self) -> bool | str:
        """The TLS verification setting (``True``, ``False`` or a CA bundle path)."""
        return self._verify

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self._api.api_base!r}, namespace={self._api.namespace!r})"

    @staticmethod
    def _request_kwargs(send: Send) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": send.headers}
        if send.json is not None:
            kwargs["json"] = send.json
        if send.timeout is not None:
            kwargs["timeout"] = send.timeout
        return kwargs


class EndpointsClient(_ClientBase):
    """
    Blocking client of the Inference Endpoints API; one pooled ``httpx.Client`` for its lifetime.

    :param token: the Hugging Face token (sent as a Bearer token; never logged).
    :param api_url: management API base, default ``https://api.endpoints.huggingface.cloud``.
    :param hub_url: Hub base for whoami, default ``https://huggingface.co``.
    :param namespace: default namespace; resolved once from the token's user when ``None``.
    :param timeout: seconds each request may take.
    :param verify: TLS verification (``True``, ``False`` or a CA bundle path).
    :param retry: backoff policy for transient failures.
    :param allow_insecure_http: allow plain ``http://`` to a non-loopback host.
    :param transport: an httpx transport to use instead of the network (tests, proxies).
    """

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None, **settings: Any) -> None:
        super().__init__(token, **settings)
        self._http = httpx.Client(transport=transport, **self._http_options)

    def _run(self, plan: Plan[T]) -> T:
        try:
            instruction = next(plan)
            while True:
                if isinstance(instruction, Sleep):
                    time.sleep(instruction.seconds)
                    instruction = plan.send(None)
                    continue
                try:
                    response = self._http.request(
                        instruction.method, instruction.url, **self._request_kwargs(instruction)
                    )
                except httpx.TransportError as exc:
                    instruction = plan.throw(exc)
                else:
                    instruction = plan.send(response)
        except StopIteration as done:
            return done.value

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EndpointsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def whoami(self) -> dict[str, Any]:
        """The token's user or organisation (``GET /api/whoami-v2``)."""
        return self._run(self._api.whoami())

    def resolve_namespace(self, namespace: str | None = None) -> str:
        """The namespace calls act in when none is given (whoami is asked at most once)."""
        return self._run(self._api.resolve_namespace(namespace))

    def list_endpoints(self, namespace: str | None = None) -> EndpointListing:
        """Endpoints of a namespace, or of the user and each organisation with ``"*"``."""
        return self._run(self._api.list_endpoints(namespace))

    def get(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Read one endpoint."""
        return self._run(self._api.get(name, namespace))

    def create(self, spec: EndpointSpec, *, namespace: str | None = None) -> InferenceEndpoint:
        """Create an endpoint from ``spec``."""
        return self._run(self._api.create(spec, namespace))

    def update(
        self, name: str, changes: EndpointUpdate, *, namespace: str | None = None
    ) -> InferenceEndpoint:
        """Apply ``changes`` (a deep merge) to an endpoint."""
        return self._run(self._api.update(name, changes, namespace))

    def pause(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Pause: no replica, no bill, no URL, until resumed."""
        return self._run(self._api.pause(name, namespace))

    def resume(
        self, name: str, *, namespace: str | None = None, running_ok: bool = True
    ) -> InferenceEndpoint:
        """Resume a paused or scaled-to-zero endpoint (already running is fine unless ``running_ok=False``)."""
        return self._run(self._api.resume(name, namespace, running_ok))

    def scale_to_zero(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Scale to zero replicas: no bill, URL kept, restarts on the next request."""
        return self._run(self._api.scale_to_zero(name, namespace))

    def delete(self, name: str, *, namespace: str | None = None, missing_ok: bool = False) -> None:
        """Delete an endpoint for good."""
        return self._run(self._api.delete(name, namespace, missing_ok))

    def list_hardware(self, namespace: str | None = None) -> list[HardwareOption]:
        """The compute offers (with prices and quota) available to a namespace."""
        return self._run(self._api.list_hardware(namespace))

    def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> int | None:
        """The HTTP status of the endpoint's health route, ``None`` without URL or answer."""
        return self._run(self._api.health_status(endpoint, timeout))

    def watch(
        self,
        name: str,
        *,
        end_time: float,
        namespace: str | None = None,
        target: str = EndpointStatus.RUNNING,
        poll_interval: float = 5.0,
        check_health: bool = True,
        settle_until: float | None = None,
        max_consecutive_errors: int = 5,
    ) -> WatchResult:
        """
        Poll until ``target`` or the absolute ``end_time`` (epoch); report how it ended, never raise for API trouble.

        ``target`` is a state or ``"deleted"``; see :meth:`EndpointsApi.watch` for ``settle_until``.
        """
        return self._run(
            self._api.watch(
                name,
                namespace,
                str(target),
                end_time,
                poll_interval,
                check_health,
                settle_until,
                max_consecutive_errors,
            )
        )

    def wait(
        self,
        name: str,
        *,
        namespace: str | None = None,
        target: str = EndpointStatus.RUNNING,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        check_health: bool = True,
    ) -> InferenceEndpoint | None:
        """
        Block until the endpoint reaches ``target`` (running: and its health route answers 200).

        Fails fast with a typed error on ``failed``/``updateFailed``, and when waiting for running on a
        paused or scaled-to-zero endpoint (nothing would ever move it); raises
        :class:`EndpointWaitTimeoutError` after ``timeout`` seconds.
        """
        return self._run(self._api.wait(name, namespace, str(target), timeout, poll_interval, check_health))


class AsyncEndpointsClient(_ClientBase):
    """
    The asyncio twin of :class:`EndpointsClient`, over one pooled ``httpx.AsyncClient``.

    Same arguments and methods as :class:`EndpointsClient`, as coroutines; ``transport`` is an
    ``httpx.AsyncBaseTransport``. Nothing in it blocks the event loop.
    """

    def __init__(
        self, token: str, *, transport: httpx.AsyncBaseTransport | None = None, **settings: Any
    ) -> None:
        super().__init__(token, **settings)
        self._http = httpx.AsyncClient(transport=transport, **self._http_options)

    async def _run(self, plan: Plan[T]) -> T:
        try:
            instruction = next(plan)
            while True:
                if isinstance(instruction, Sleep):
                    await asyncio.sleep(instruction.seconds)
                    instruction = plan.send(None)
                    continue
                try:
                    response = await self._http.request(
                        instruction.method, instruction.url, **self._request_kwargs(instruction)
                    )
                except httpx.TransportError as exc:
                    instruction = plan.throw(exc)
                else:
                    instruction = plan.send(response)
        except StopIteration as done:
            return done.value

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncEndpointsClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def whoami(self) -> dict[str, Any]:
        """See :meth:`EndpointsClient.whoami`."""
        return await self._run(self._api.whoami())

    async def resolve_namespace(self, namespace: str | None = None) -> str:
        """See :meth:`EndpointsClient.resolve_namespace`."""
        return await self._run(self._api.resolve_namespace(namespace))

    async def list_endpoints(self, namespace: str | None = None) -> EndpointListing:
        """See :meth:`EndpointsClient.list_endpoints`."""
        return await self._run(self._api.list_endpoints(namespace))

    async def get(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.get`."""
        return await self._run(self._api.get(name, namespace))

    async def create(self, spec: EndpointSpec, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.create`."""
        return await self._run(self._api.create(spec, namespace))

    async def update(
        self, name: str, changes: EndpointUpdate, *, namespace: str | None = None
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.update`."""
        return await self._run(self._api.update(name, changes, namespace))

    async def pause(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.pause`."""
        return await self._run(self._api.pause(name, namespace))

    async def resume(
        self, name: str, *, namespace: str | None = None, running_ok: bool = True
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.resume`."""
        return await self._run(self._api.resume(name, namespace, running_ok))

    async def scale_to_zero(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.scale_to_zero`."""
        return await self._run(self._api.scale_to_zero(name, namespace))

    async def delete(self, name: str, *, namespace: str | None = None, missing_ok: bool = False) -> None:
        """See :meth:`EndpointsClient.delete`."""
        return await self._run(self._api.delete(name, namespace, missing_ok))

    async def list_hardware(self, namespace: str | None = None) -> list[HardwareOption]:
        """See :meth:`EndpointsClient.list_hardware`."""
        return await self._run(self._api.list_hardware(namespace))

    async def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> int | None:
        """See :meth:`EndpointsClient.health_status`."""
        return await self._run(self._api.health_status(endpoint, timeout))

    async def watch(
        self,
        name: str,
        *,
        end_time: float,
        namespace: str | None = None,
        target: str = EndpointStatus.RUNNING,
        poll_interval: float = 5.0,
        check_health: bool = True,
        settle_until: float | None = None,
        max_consecutive_errors: int = 5,
    ) -> WatchResult:
        """See :meth:`EndpointsClient.watch`."""
        return await self._run(
            self._api.watch(
                name,
                namespace,
                str(target),
                end_time,
                poll_interval,
                check_health,
                settle_until,
                max_consecutive_errors,
            )
        )

    async def wait(
        self,
        name: str,
        *,
        namespace: str | None = None,
        target: str = EndpointStatus.RUNNING,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        check_health: bool = True,
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.wait`."""
        return await self._run(
            self._api.wait(name, namespace, str(target), timeout, poll_interval, check_health)
        )
