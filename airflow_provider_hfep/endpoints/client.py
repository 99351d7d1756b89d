"""
Sync and async clients of the Inference Endpoints management API, over httpx.

Both carry out the same plans (:mod:`airflow_provider_hfep.endpoints.calls`): one with
``httpx.Client`` and ``time.sleep``, the other with ``httpx.AsyncClient`` and ``asyncio.sleep``. The
drivers know nothing of the API, so the two cannot drift apart; a test also checks that they expose
the same methods with the same parameters.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from airflow_provider_hfep.endpoints.arguments import check_count, check_seconds
from airflow_provider_hfep.endpoints.calls import DEFAULT_MAX_PAGES, EndpointsApi
from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.exchange import Plan, Send, Sleep
from airflow_provider_hfep.endpoints.models import (
    CatalogModel,
    ComputeQuota,
    EndpointListing,
    EndpointStatus,
    HardwareOption,
    InferenceEndpoint,
    LogLine,
    Replica,
)
from airflow_provider_hfep.endpoints.retry import RetryPolicy
from airflow_provider_hfep.endpoints.transport import (
    DEFAULT_MAX_ANSWER_BYTES,
    USER_AGENT,
    BearerAuth,
    bounded,
    check_base_url,
    shared_async_client,
    tls_verification,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_hfep.endpoints.diagnostics import Diagnosis
    from airflow_provider_hfep.endpoints.payloads import EndpointSpec, EndpointUpdate
    from airflow_provider_hfep.endpoints.waiting import WatchResult

T = TypeVar("T")

DEFAULT_API_URL = "https://api.endpoints.huggingface.cloud"
DEFAULT_HUB_URL = "https://huggingface.co"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CATALOG_URL = "https://endpoints.huggingface.co/api/v1/catalog"
#: a request's whole exchange, answer included, may last this many times the per-read ``timeout``
REQUEST_DEADLINE_FACTOR = 4


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
        catalog_url: str = DEFAULT_CATALOG_URL,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        request_deadline: float | None = None,
    ) -> None:
        if not isinstance(token, str) or not token.strip():
            raise InvalidEndpointArgumentError(
                "token", "is empty", "set the connection's Token field (its password)"
            )
        if not timeout or timeout <= 0:
            raise InvalidEndpointArgumentError(
                "timeout", f"{timeout!r} is not a positive number of seconds", "use e.g. 30"
            )
        check_count("max_answer_bytes", max_answer_bytes, 1)
        if request_deadline is not None:
            check_seconds("request_deadline", request_deadline)
        self._api = EndpointsApi(
            api_url=check_base_url("api_url", api_url, allow_insecure_http),
            hub_url=check_base_url("hub_url", hub_url, allow_insecure_http),
            namespace=namespace,
            retry=retry or RetryPolicy(),
            catalog_url=check_base_url("catalog_url", catalog_url, allow_insecure_http),
            allow_insecure_http=allow_insecure_http,
        )
        self._redacted = (token,)  # never shown in what diagnose() reads from the endpoint's log
        self._verify = verify
        self._max_answer_bytes = max_answer_bytes
        self._deadline = request_deadline or REQUEST_DEADLINE_FACTOR * timeout
        self._http_options: dict[str, Any] = {
            "auth": BearerAuth(token, allow_insecure_http),
            "timeout": httpx.Timeout(timeout),
            "verify": tls_verification(verify),
            "headers": {"user-agent": USER_AGENT},
            # A redirect is the plan's to judge (exchange): followed for a same-origin GET only, never
            # with a body (the secrets of an update) or the token to another origin.
            "follow_redirects": False,
        }

    @property
    def api_url(self) -> str:
        return self._api.api_base

    @property
    def api_time(self) -> float:
        """
        Now on the API's clock (epoch seconds), from its answers' ``Date``: the clock of every deadline.

        A deadline written on a worker (``end_time``, ``settle_until``) and read in a triggerer is
        compared there with this same clock, so a skew between the two machines does not move it.
        """
        return self._api.now()

    @property
    def timeout(self) -> float | None:
        """Seconds each read of a request may take (a whole request: ``request_deadline``)."""
        return self._http_options["timeout"].read

    @property
    def allow_insecure_http(self) -> bool:
        """Whether the token may go over plain http to another machine (the data planes included)."""
        return self._api.allow_insecure_http

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

    def _request(self, http: httpx.Client | httpx.AsyncClient, send: Send) -> httpx.Request:
        kwargs: dict[str, Any] = {"headers": send.headers}
        if send.json is not None:
            kwargs["json"] = send.json
        if send.params:
            kwargs["params"] = send.params
        if send.timeout is not None:
            kwargs["timeout"] = send.timeout
        return http.build_request(send.method, send.url, **kwargs)


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
    :param catalog_url: base of the model catalog API.
    :param max_answer_bytes: bytes of one answer read at most (default 64 MiB; no real answer is near).
    :param request_deadline: seconds one request may take in all, answer included (default four
        times ``timeout``, which bounds each read only: a trickling answer would never end).
    :param transport: an httpx transport to use instead of the network (tests, proxies).
    """

    def __init__(self, token: str, *, transport: httpx.BaseTransport | None = None, **settings: Any) -> None:
        super().__init__(token, **settings)
        self._http = httpx.Client(transport=transport, **self._http_options)

    def _send(self, send: Send) -> httpx.Response:
        deadline = time.monotonic() + self._deadline
        response = self._http.send(self._request(self._http, send), stream=True)
        try:
            bounded(response, self._max_answer_bytes, deadline).read()
        finally:
            response.close()
        return response

    def _run(self, plan: Plan[T]) -> T:
        try:
            instruction = next(plan)
            while True:
                if isinstance(instruction, Sleep):
                    time.sleep(instruction.seconds)
                    instruction = plan.send(None)
                    continue
                try:
                    response = self._send(instruction)
                except Exception as exc:  # the plan decides: repeat, or raise where it stands
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
        """Return the token's user or organisation (``GET /api/whoami-v2``)."""
        return self._run(self._api.whoami())

    def resolve_namespace(self, namespace: str | None = None) -> str:
        """Return the namespace calls act in when none is given (whoami is asked at most once)."""
        return self._run(self._api.resolve_namespace(namespace=namespace))

    def list_endpoints(
        self,
        namespace: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> EndpointListing:
        """
        List every endpoint of a namespace, or of the user and each organisation with ``"*"``.

        Every page is read (``limit`` is the page size), ``max_pages`` per namespace at most (an
        error past it); ``tags`` keeps the endpoints carrying all of them, ``search`` those whose name
        contains it.
        """
        return self._run(
            self._api.list_endpoints(
                namespace=namespace, tags=tags, search=search, limit=limit, max_pages=max_pages
            )
        )

    def get(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Read one endpoint."""
        return self._run(self._api.get(name=name, namespace=namespace))

    def create(
        self, spec: EndpointSpec, *, namespace: str | None = None, adopt_tag: str | None = None
    ) -> InferenceEndpoint:
        """
        Create an endpoint from ``spec``.

        Never sent twice blindly: after a lost answer the endpoint is looked for first, and one found is
        taken as this call's only if it carries ``adopt_tag`` (a marker tag of ``spec``, unique to the
        caller); otherwise the call fails with :class:`ConflictError` (it may be someone else's).
        """
        return self._run(self._api.create(spec=spec, namespace=namespace, adopt_tag=adopt_tag))

    def update(
        self, name: str, changes: EndpointUpdate, *, namespace: str | None = None
    ) -> InferenceEndpoint:
        """Apply ``changes`` (a deep merge) to an endpoint."""
        return self._run(self._api.update(name=name, changes=changes, namespace=namespace))

    def pause(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Pause: no replica, no bill, no URL, until resumed."""
        return self._run(self._api.pause(name=name, namespace=namespace))

    def resume(
        self, name: str, *, namespace: str | None = None, running_ok: bool = True
    ) -> InferenceEndpoint:
        """Resume a paused or scaled-to-zero endpoint (already running is fine unless ``running_ok=False``)."""
        return self._run(self._api.resume(name=name, namespace=namespace, running_ok=running_ok))

    def scale_to_zero(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """Scale to zero replicas: no bill, URL kept, restarts on the next request."""
        return self._run(self._api.scale_to_zero(name=name, namespace=namespace))

    def delete(self, name: str, *, namespace: str | None = None, missing_ok: bool = False) -> None:
        """Delete an endpoint for good."""
        return self._run(self._api.delete(name=name, namespace=namespace, missing_ok=missing_ok))

    def list_hardware(self, namespace: str | None = None) -> list[HardwareOption]:
        """List the compute offers (with prices and quota) available to a namespace."""
        return self._run(self._api.list_hardware(namespace=namespace))

    def quotas(self, namespace: str | None = None) -> list[ComputeQuota]:
        """List, per vendor and instance type, the accelerators the namespace may hold and holds."""
        return self._run(self._api.quotas(namespace=namespace))

    def check_capacity(
        self,
        *,
        vendor: str,
        region: str,
        instance_type: str,
        instance_size: str,
        replicas: int = 1,
        already_held: int = 0,
        namespace: str | None = None,
    ) -> HardwareOption | None:
        """Refuse (:class:`CapacityError`) hardware the namespace cannot get now: quota, availability."""
        return self._run(
            self._api.check_capacity(
                namespace=namespace,
                vendor=vendor,
                region=region,
                instance_type=instance_type,
                instance_size=instance_size,
                replicas=replicas,
                already_held=already_held,
            )
        )

    def logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        tail: int | None = 200,
        replica: str | None = None,
        level: str | None = None,
        search: str | None = None,
        since: str | None = None,
        until: str | None = None,
        secrets: Sequence[str] = (),
    ) -> list[LogLine]:
        """
        Read the endpoint's log, oldest first (v3 where offered, else v2).

        The token, ``secrets`` (values the caller knows, such as the endpoint's secrets it sent) and
        anything shaped like a credential are hidden (:func:`~.diagnostics.redact`).
        """
        return self._run(
            self._api.logs(
                name=name,
                namespace=namespace,
                tail=tail,
                replica=replica,
                level=level,
                search=search,
                since=since,
                until=until,
                secrets=(*self._redacted, *secrets),
            )
        )

    def replicas(self, name: str, *, namespace: str | None = None) -> list[Replica]:
        """Read the state of each of the endpoint's replicas."""
        return self._run(self._api.replicas(name=name, namespace=namespace))

    def metrics(
        self,
        name: str,
        metric: str,
        *,
        start: float,
        end: float,
        step_seconds: int = 60,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """Read one metric (``replica-status``, ``pending-request``, ``response-elapsed``...) over a window."""
        return self._run(
            self._api.metrics(
                name=name, namespace=namespace, metric=metric, start=start, end=end, step_seconds=step_seconds
            )
        )

    def list_catalog(
        self,
        *,
        task: str | None = None,
        accelerator: str | None = None,
        engine: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[CatalogModel]:
        """List the models of Hugging Face's catalog, filtered."""
        return self._run(
            self._api.list_catalog(
                task=task, accelerator=accelerator, engine=engine, search=search, limit=limit
            )
        )

    def deploy_from_catalog(
        self,
        *,
        repo_id: str | None = None,
        recipe_id: str | None = None,
        name: str | None = None,
        accelerator: str | None = None,
        namespace: str | None = None,
    ) -> InferenceEndpoint:
        """Deploy a catalog model (``repo_id``) or one of its recipes (``recipe_id``)."""
        return self._run(
            self._api.deploy_from_catalog(
                namespace=namespace, repo_id=repo_id, recipe_id=recipe_id, name=name, accelerator=accelerator
            )
        )

    def diagnose(
        self,
        name: str,
        *,
        namespace: str | None = None,
        health_failing: bool = False,
        secrets: Sequence[str] = (),
    ) -> Diagnosis:
        """Explain a failed, stuck or unhealthy deployment from its log and replicas (secrets hidden, as in logs)."""
        return self._run(
            self._api.diagnose(
                name=name,
                namespace=namespace,
                secrets=(*self._redacted, *secrets),
                health_failing=health_failing,
            )
        )

    def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> int | None:
        """Return the HTTP status of the endpoint's health route, ``None`` without URL or answer."""
        return self._run(self._api.health_status(endpoint=endpoint, timeout=timeout))

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
        pending_deadline: float | None = None,
    ) -> WatchResult:
        """
        Poll until ``target`` or the absolute ``end_time`` (epoch); report how it ended, never raise for API trouble.

        ``target`` is a state or ``"deleted"``; see :meth:`EndpointsApi.watch` for ``settle_until``
        and ``pending_deadline`` (an endpoint still ``pending`` then ends the wait with ``stuck_pending``).
        """
        return self._run(
            self._api.watch(
                name=name,
                namespace=namespace,
                target=str(target),
                end_time=end_time,
                poll_interval=poll_interval,
                check_health=check_health,
                settle_until=settle_until,
                max_consecutive_errors=max_consecutive_errors,
                pending_deadline=pending_deadline,
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
        return self._run(
            self._api.wait(
                name=name,
                namespace=namespace,
                target=str(target),
                timeout=timeout,
                poll_interval=poll_interval,
                check_health=check_health,
            )
        )


class AsyncEndpointsClient(_ClientBase):
    """
    The asyncio twin of :class:`EndpointsClient`, over one pooled ``httpx.AsyncClient``.

    Same arguments and methods as :class:`EndpointsClient`, as coroutines; ``transport`` is an
    ``httpx.AsyncBaseTransport``. Nothing in it blocks the event loop.

    :param shared: use the HTTP client (and connection pool) that the running event loop's other
        shared clients with the same token and settings use, instead of one of its own: how a
        triggerer's many waits stay light (:func:`~airflow_provider_hfep.endpoints.transport.shared_async_client`).
        Closing this client then leaves that one open. Not with ``transport``.
    """

    def __init__(
        self,
        token: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: bool = False,
        **settings: Any,
    ) -> None:
        super().__init__(token, **settings)
        if shared and transport is not None:
            raise InvalidEndpointArgumentError(
                "transport",
                "is given with shared=True",
                "pass one or the other: a shared client has its pool",
            )
        self._owns_http = not shared
        if shared:
            # the TLS setting is not in it: it picks the shared pool, which keys the shared client too
            identity = hashlib.sha256(
                "\0".join(
                    [token, repr(self._http_options["timeout"]), str(self.allow_insecure_http)]
                ).encode()
            ).hexdigest()
            self._http = shared_async_client(self._http_options, self._verify, identity)
        else:
            self._http = httpx.AsyncClient(transport=transport, **self._http_options)

    async def _send(self, send: Send) -> httpx.Response:
        deadline = time.monotonic() + self._deadline
        try:
            async with asyncio.timeout(self._deadline):
                response = await self._http.send(self._request(self._http, send), stream=True)
                try:
                    await bounded(response, self._max_answer_bytes, deadline).aread()
                finally:
                    await response.aclose()
        except TimeoutError:
            raise httpx.ReadTimeout("no whole answer by the request's deadline") from None
        return response

    async def _run(self, plan: Plan[T]) -> T:
        try:
            instruction = next(plan)
            while True:
                if isinstance(instruction, Sleep):
                    await asyncio.sleep(instruction.seconds)
                    instruction = plan.send(None)
                    continue
                try:
                    response = await self._send(instruction)
                except Exception as exc:  # the plan decides: repeat, or raise where it stands
                    instruction = plan.throw(exc)
                else:
                    instruction = plan.send(response)
        except StopIteration as done:
            return done.value

    async def aclose(self) -> None:
        if self._owns_http:  # a shared client stays with the event loop's other clients
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
        return await self._run(self._api.resolve_namespace(namespace=namespace))

    async def list_endpoints(
        self,
        namespace: str | None = None,
        *,
        tags: Sequence[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> EndpointListing:
        """See :meth:`EndpointsClient.list_endpoints`."""
        return await self._run(
            self._api.list_endpoints(
                namespace=namespace, tags=tags, search=search, limit=limit, max_pages=max_pages
            )
        )

    async def get(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.get`."""
        return await self._run(self._api.get(name=name, namespace=namespace))

    async def create(
        self, spec: EndpointSpec, *, namespace: str | None = None, adopt_tag: str | None = None
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.create`."""
        return await self._run(self._api.create(spec=spec, namespace=namespace, adopt_tag=adopt_tag))

    async def update(
        self, name: str, changes: EndpointUpdate, *, namespace: str | None = None
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.update`."""
        return await self._run(self._api.update(name=name, changes=changes, namespace=namespace))

    async def pause(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.pause`."""
        return await self._run(self._api.pause(name=name, namespace=namespace))

    async def resume(
        self, name: str, *, namespace: str | None = None, running_ok: bool = True
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.resume`."""
        return await self._run(self._api.resume(name=name, namespace=namespace, running_ok=running_ok))

    async def scale_to_zero(self, name: str, *, namespace: str | None = None) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.scale_to_zero`."""
        return await self._run(self._api.scale_to_zero(name=name, namespace=namespace))

    async def delete(self, name: str, *, namespace: str | None = None, missing_ok: bool = False) -> None:
        """See :meth:`EndpointsClient.delete`."""
        return await self._run(self._api.delete(name=name, namespace=namespace, missing_ok=missing_ok))

    async def list_hardware(self, namespace: str | None = None) -> list[HardwareOption]:
        """See :meth:`EndpointsClient.list_hardware`."""
        return await self._run(self._api.list_hardware(namespace=namespace))

    async def quotas(self, namespace: str | None = None) -> list[ComputeQuota]:
        """See :meth:`EndpointsClient.quotas`."""
        return await self._run(self._api.quotas(namespace=namespace))

    async def check_capacity(
        self,
        *,
        vendor: str,
        region: str,
        instance_type: str,
        instance_size: str,
        replicas: int = 1,
        already_held: int = 0,
        namespace: str | None = None,
    ) -> HardwareOption | None:
        """See :meth:`EndpointsClient.check_capacity`."""
        return await self._run(
            self._api.check_capacity(
                namespace=namespace,
                vendor=vendor,
                region=region,
                instance_type=instance_type,
                instance_size=instance_size,
                replicas=replicas,
                already_held=already_held,
            )
        )

    async def logs(
        self,
        name: str,
        *,
        namespace: str | None = None,
        tail: int | None = 200,
        replica: str | None = None,
        level: str | None = None,
        search: str | None = None,
        since: str | None = None,
        until: str | None = None,
        secrets: Sequence[str] = (),
    ) -> list[LogLine]:
        """See :meth:`EndpointsClient.logs`."""
        return await self._run(
            self._api.logs(
                name=name,
                namespace=namespace,
                tail=tail,
                replica=replica,
                level=level,
                search=search,
                since=since,
                until=until,
                secrets=(*self._redacted, *secrets),
            )
        )

    async def replicas(self, name: str, *, namespace: str | None = None) -> list[Replica]:
        """See :meth:`EndpointsClient.replicas`."""
        return await self._run(self._api.replicas(name=name, namespace=namespace))

    async def metrics(
        self,
        name: str,
        metric: str,
        *,
        start: float,
        end: float,
        step_seconds: int = 60,
        namespace: str | None = None,
    ) -> dict[str, Any]:
        """See :meth:`EndpointsClient.metrics`."""
        return await self._run(
            self._api.metrics(
                name=name, namespace=namespace, metric=metric, start=start, end=end, step_seconds=step_seconds
            )
        )

    async def list_catalog(
        self,
        *,
        task: str | None = None,
        accelerator: str | None = None,
        engine: str | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> list[CatalogModel]:
        """See :meth:`EndpointsClient.list_catalog`."""
        return await self._run(
            self._api.list_catalog(
                task=task, accelerator=accelerator, engine=engine, search=search, limit=limit
            )
        )

    async def deploy_from_catalog(
        self,
        *,
        repo_id: str | None = None,
        recipe_id: str | None = None,
        name: str | None = None,
        accelerator: str | None = None,
        namespace: str | None = None,
    ) -> InferenceEndpoint:
        """See :meth:`EndpointsClient.deploy_from_catalog`."""
        return await self._run(
            self._api.deploy_from_catalog(
                namespace=namespace, repo_id=repo_id, recipe_id=recipe_id, name=name, accelerator=accelerator
            )
        )

    async def diagnose(
        self,
        name: str,
        *,
        namespace: str | None = None,
        health_failing: bool = False,
        secrets: Sequence[str] = (),
    ) -> Diagnosis:
        """See :meth:`EndpointsClient.diagnose`."""
        return await self._run(
            self._api.diagnose(
                name=name,
                namespace=namespace,
                secrets=(*self._redacted, *secrets),
                health_failing=health_failing,
            )
        )

    async def health_status(self, endpoint: InferenceEndpoint, timeout: float | None = None) -> int | None:
        """See :meth:`EndpointsClient.health_status`."""
        return await self._run(self._api.health_status(endpoint=endpoint, timeout=timeout))

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
        pending_deadline: float | None = None,
    ) -> WatchResult:
        """See :meth:`EndpointsClient.watch`."""
        return await self._run(
            self._api.watch(
                name=name,
                namespace=namespace,
                target=str(target),
                end_time=end_time,
                poll_interval=poll_interval,
                check_health=check_health,
                settle_until=settle_until,
                max_consecutive_errors=max_consecutive_errors,
                pending_deadline=pending_deadline,
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
    ) -> InferenceEndpoint | None:
        """See :meth:`EndpointsClient.wait`."""
        return await self._run(
            self._api.wait(
                name=name,
                namespace=namespace,
                target=str(target),
                timeout=timeout,
                poll_interval=poll_interval,
                check_health=check_health,
            )
        )
