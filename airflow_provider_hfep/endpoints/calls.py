"""
Every management call, described once as a plan (see :mod:`airflow_provider_hfep.endpoints.exchange`).

A plan holds all the knowledge of a call: the path, the body, which answers to repeat, how an answer
is read, and the steps of calls made of several requests ("resume, or read it if it already runs",
"create, and after a lost answer look before sending again"). The polling loop of the waits is
:mod:`airflow_provider_hfep.endpoints.watch`. Every parameter is keyword-only: a plan's parameters can
be reordered without silently breaking a client.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow_provider_hfep.endpoints import watch as watching
from airflow_provider_hfep.endpoints.arguments import check_count
from airflow_provider_hfep.endpoints.diagnostics import Diagnosis, explain, redact
from airflow_provider_hfep.endpoints.errors import (
    CapacityError,
    ConflictError,
    EndpointsApiError,
    EndpointsError,
    EndpointsTransportError,
    InvalidEndpointArgumentError,
    MalformedAnswerError,
    NotFoundError,
    ServerError,
    ValidationFailedError,
    error_from_response,
)
from airflow_provider_hfep.endpoints.exchange import Exchange, Plan, Send, Sleep, decode
from airflow_provider_hfep.endpoints.models import (
    CatalogModel,
    ComputeQuota,
    EndpointListing,
    HardwareOption,
    InferenceEndpoint,
    LogLine,
    Replica,
    log_records,
)
from airflow_provider_hfep.endpoints.payloads import (
    EndpointSpec,
    EndpointUpdate,
    validate_endpoint_name,
    validate_metric,
    validate_namespace,
    validate_repo_id,
)
from airflow_provider_hfep.endpoints.transport import check_token_destination

if TYPE_CHECKING:
    from airflow_provider_hfep.endpoints.retry import RetryPolicy
    from airflow_provider_hfep.endpoints.waiting import WatchResult

log = logging.getLogger(__name__)

#: filtered v2 logs: how many more lines than ``tail`` to read (the filter runs here), and the most
V2_FILTER_READ_FACTOR = 10
V2_FILTER_READ_MAX = 10_000
#: pages one listing reads at most: 20,000 endpoints at the API's default page size, far past any
#: namespace, while a service handing out fresh cursors forever is stopped
DEFAULT_MAX_PAGES = 1000


class EndpointsApi(Exchange):
    """
    The description of every management call, as plans. No I/O happens here.

    :param api_url: base of the management API, without ``/v2``.
    :param hub_url: base of the Hub, for ``/api/whoami-v2``.
    :param namespace: default namespace; when ``None`` it is resolved once from whoami.
    :param retry: the retry policy for requests that are safe to repeat.
    :param catalog_url: base of the model catalog API.
    :param allow_insecure_http: plain http to another machine is allowed (the endpoint URLs included).
    """

    def __init__(
        self,
        *,
        api_url: str,
        hub_url: str,
        namespace: str | None,
        retry: RetryPolicy,
        catalog_url: str = "",
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(retry=retry, allow_insecure_http=allow_insecure_http)
        api_url = api_url.rstrip("/")
        self.api_base = api_url[: -len("/v2")] if api_url.endswith("/v2") else api_url
        self.hub_url = hub_url.rstrip("/")
        self.catalog_url = catalog_url.rstrip("/")
        self.namespace = validate_namespace(namespace) if namespace else None

    def _url(self, *segments: str, version: str = "v2") -> str:
        return f"{self.api_base}/{version}/" + "/".join(quote(s, safe="") for s in segments)

    # -- namespace -----------------------------------------------------------------------------

    def whoami(self) -> Plan[dict[str, Any]]:
        """Read the token's user (or organisation) and organisations, their names checked as namespaces."""
        response = yield from self.request(Send("GET", f"{self.hub_url}/api/whoami-v2"))

        def read(me: Any) -> dict[str, Any]:
            if not isinstance(me, dict) or not isinstance(me.get("name"), str):
                raise TypeError("no name")
            if not isinstance(me.get("orgs", []), list):
                raise TypeError("orgs is not a list")
            return me

        me = decode(response, read)
        validate_namespace(me["name"], "whoami name")
        for org in me.get("orgs", []):
            if not isinstance(org, dict):
                raise MalformedAnswerError.of(response, "an organisation is not an object")
            validate_namespace(org.get("name"), "whoami organisation name")
        return me

    def resolve_namespace(self, *, namespace: str | None = None) -> Plan[str]:
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

    def _endpoint(self, send: Send, namespace: str, **retry: Any) -> Plan[InferenceEndpoint]:
        """Send a request whose answer is an endpoint, and read it (checked: see :func:`decode`)."""
        response = yield from self.request(send, **retry)
        return decode(response, lambda raw: InferenceEndpoint.from_raw(raw, namespace))

    def get(self, *, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace=namespace)
        return (yield from self._endpoint(Send("GET", self._url("endpoint", ns, name)), ns))

    def list_in(
        self,
        *,
        namespace: str,
        tags: Sequence[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Plan[list[InferenceEndpoint]]:
        """Every endpoint of one namespace: each page, following ``nextCursor`` to the end (``max_pages`` at most)."""
        params: dict[str, str | int] = {}
        if tags:
            params["tags"] = ",".join(tags)
        if search:
            params["search"] = search
        if limit is not None:
            params["limit"] = limit
        endpoints: list[InferenceEndpoint] = []
        seen: set[str] = set()

        def read(page: Any) -> tuple[list[InferenceEndpoint], str | None]:
            cursor = page.get("nextCursor")
            if cursor is not None and not isinstance(cursor, str):
                raise TypeError(f"nextCursor is {type(cursor).__name__}")
            if not isinstance(page["items"], list):
                raise TypeError("items is not a list")
            return [InferenceEndpoint.from_raw(item, namespace) for item in page["items"]], cursor

        for _ in range(max_pages):
            response = yield from self.request(
                Send("GET", self._url("endpoint", namespace), params=dict(params))
            )
            items, cursor = decode(response, read)
            endpoints += items
            if not cursor:  # an empty page may still have a next one (the service filters pages)
                return endpoints
            if cursor in seen:  # a service that hands the same cursor back would loop forever
                raise EndpointsError(f"Listing {namespace}: the API returned the cursor {cursor!r} twice")
            seen.add(cursor)
            params["cursor"] = cursor
        raise EndpointsError(
            f"Listing {namespace}: still more pages after max_pages={max_pages} ({len(endpoints)} "
            "endpoints read); the API keeps handing out new cursors. Fix: raise max_pages if the "
            "namespace really holds that many, or filter the listing (tags, search)"
        )

    def list_endpoints(
        self,
        *,
        namespace: str | None,
        tags: Sequence[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Plan[EndpointListing]:
        """One namespace, or ``*``: the user's and each organisation's, failures reported per namespace."""
        if limit is not None:
            check_count("limit", limit, 1)
        check_count("max_pages", max_pages, 1)
        if isinstance(tags, str):
            raise InvalidEndpointArgumentError("tags", f"{tags!r} is a string", "pass a list of tags")
        if namespace != "*":
            ns = yield from self.resolve_namespace(namespace=namespace)
            items = yield from self.list_in(
                namespace=ns, tags=tags, search=search, limit=limit, max_pages=max_pages
            )
            return EndpointListing(items)
        me = yield from self.whoami()
        namespaces = ([me["name"]] if me.get("type") == "user" else []) + [
            org["name"] for org in me.get("orgs", [])
        ]
        endpoints: list[InferenceEndpoint] = []
        failures: dict[str, Exception] = {}
        for ns in namespaces:
            try:
                endpoints += yield from self.list_in(
                    namespace=ns, tags=tags, search=search, limit=limit, max_pages=max_pages
                )
            except EndpointsApiError as exc:
                log.warning("Could not list endpoints of namespace %s: %s", ns, exc)
                failures[ns] = exc
        return EndpointListing(endpoints, failures)

    def create(
        self, *, spec: EndpointSpec, namespace: str | None, adopt_tag: str | None = None
    ) -> Plan[InferenceEndpoint]:
        """
        POST the spec. Never blindly re-sent: after an ambiguous failure it first looks for the endpoint.

        An endpoint found then is taken as this call's own only if it carries ``adopt_tag`` (a marker
        unique to the caller, among ``spec.tags``); one with the same name and model may be anyone's.
        """
        if adopt_tag is not None and adopt_tag not in (spec.tags or []):
            raise InvalidEndpointArgumentError(
                "adopt_tag", f"{adopt_tag!r} is not among the spec's tags", "add it to the spec's tags"
            )
        ns = yield from self.resolve_namespace(namespace=namespace)
        send = Send("POST", self._url("endpoint", ns), json=spec.to_body())
        attempts = 0
        while True:
            attempts += 1
            try:
                # 429 means "not processed": the one failure that is safe to repeat as is.
                return (
                    yield from self._endpoint(
                        send, ns, retry_statuses=frozenset({429}), retry_transport=False
                    )
                )
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
                    found = yield from self.get(name=spec.name, namespace=ns)
                except NotFoundError:
                    continue  # it certainly was not created: sending again cannot duplicate it
                if adopt_tag is not None and adopt_tag in found.tags:
                    return found
                raise ConflictError(
                    409,
                    f"the answer to creating {ns}/{spec.name} was lost ({exc}) and an endpoint of that "
                    "name exists now, without this call's marker tag: it may be someone else's. Fix: "
                    "look at it; pass adopt_tag (a tag unique to this call) to take over your own",
                    method="POST",
                    path=urlsplit(send.url).path,
                ) from None

    def update(self, *, name: str, changes: EndpointUpdate, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace=namespace)
        # A PUT is a deep merge: applying the same one twice gives the same endpoint, so it may be retried.
        return (
            yield from self._endpoint(
                Send("PUT", self._url("endpoint", ns, name), json=changes.to_body()), ns
            )
        )

    def _action(self, *, name: str, action: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace=namespace)
        return (yield from self._endpoint(Send("POST", self._url("endpoint", ns, name, action)), ns))

    def pause(self, *, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        return (yield from self._action(name=name, action="pause", namespace=namespace))

    def scale_to_zero(self, *, name: str, namespace: str | None) -> Plan[InferenceEndpoint]:
        return (yield from self._action(name=name, action="scale-to-zero", namespace=namespace))

    def resume(self, *, name: str, namespace: str | None, running_ok: bool) -> Plan[InferenceEndpoint]:
        """Resume; with ``running_ok`` an "already running" refusal reads the endpoint instead of failing."""
        try:
            return (yield from self._action(name=name, action="resume", namespace=namespace))
        except ValidationFailedError as exc:
            if not (running_ok and "already running" in exc.server_message):
                raise
        return (yield from self.get(name=name, namespace=namespace))

    def delete(self, *, name: str, namespace: str | None, missing_ok: bool) -> Plan[None]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace=namespace)
        try:
            yield from self.request(Send("DELETE", self._url("endpoint", ns, name)))
        except NotFoundError as exc:
            # After a retried DELETE a 404 means an earlier try went through.
            if not (missing_ok or exc.retries):
                raise

    def list_hardware(self, *, namespace: str | None) -> Plan[list[HardwareOption]]:
        ns = yield from self.resolve_namespace(namespace=namespace)
        response = yield from self.request(Send("GET", self._url("provider", ns)))
        return decode(response, HardwareOption.list_from_raw)

    def quotas(self, *, namespace: str | None) -> Plan[list[ComputeQuota]]:
        ns = yield from self.resolve_namespace(namespace=namespace)
        response = yield from self.request(Send("GET", self._url("provider", "quotas", ns)))
        return decode(response, ComputeQuota.list_from_raw)

    def check_capacity(
        self,
        *,
        namespace: str | None,
        vendor: str,
        region: str,
        instance_type: str,
        instance_size: str,
        replicas: int,
        already_held: int = 0,
    ) -> Plan[HardwareOption | None]:
        """
        Refuse, before any change, hardware the namespace cannot get now: quota or availability.

        Reads the hardware listing (the offer's status and quota, per region). What the listing does
        not describe (an instance type it does not list, a missing quota) is the service's to judge:
        it passes. ``already_held`` accelerators of this type are the endpoint's own (an update).
        """
        check_count("replicas", replicas, 0)
        check_count("already_held", already_held, 0)
        offers = yield from self.list_hardware(namespace=namespace)
        offer = next(
            (
                o
                for o in offers
                if (o.vendor, o.region, o.instance_type, o.instance_size)
                == (vendor, region, instance_type, instance_size)
            ),
            None,
        )
        where = f"{vendor}/{region}"
        if offer is None:
            log.warning(
                "%s %s in %s is not in the hardware listing: the service will judge",
                instance_type,
                instance_size,
                where,
            )
            return None
        if offer.status in ("not_available", "notAvailable", "deprecated"):
            raise CapacityError(
                f"{instance_type} {instance_size} in {where} is {offer.status}",
                "choose another instance type or region (the hardware listing, list_hardware(), says which)",
            )
        if offer.quota_max is not None and offer.quota_used is not None:
            needed = offer.num_accelerators * max(1, replicas) - already_held
            if offer.quota_used + needed > offer.quota_max:
                raise CapacityError(
                    f"quota: {offer.quota_used} of {offer.quota_max} {instance_type} in {where} in use, "
                    f"and this needs {needed} more",
                    "pause or delete an endpoint that holds them, ask Hugging Face for more quota, or choose "
                    "other hardware",
                )
        return offer

    def logs(
        self,
        *,
        name: str,
        namespace: str | None,
        tail: int | None = 200,
        replica: str | None = None,
        level: str | None = None,
        search: str | None = None,
        since: str | None = None,
        until: str | None = None,
        secrets: Sequence[str] = (),
    ) -> Plan[list[LogLine]]:
        """
        Read the endpoint's log, oldest first: the searchable v3 logs, or the v2 text where v3 answers 501.

        ``level``, ``search``, ``since`` and ``until`` (RFC 3339) filter on the service where it can (v3);
        with v2 they are applied here to the lines read. ``secrets`` (and anything that looks like a
        Hugging Face token) are hidden in the messages: a container may print its environment.
        """
        lines = yield from self._read_logs(
            name=name,
            namespace=namespace,
            tail=tail,
            replica=replica,
            level=level,
            search=search,
            since=since,
            until=until,
        )
        return [dataclasses.replace(line, message=redact(line.message, secrets)) for line in lines]

    def _read_logs(
        self,
        *,
        name: str,
        namespace: str | None,
        tail: int | None,
        replica: str | None,
        level: str | None,
        search: str | None,
        since: str | None,
        until: str | None,
    ) -> Plan[list[LogLine]]:
        validate_endpoint_name(name)
        if tail is not None:
            check_count("tail", tail, 1)
        ns = yield from self.resolve_namespace(namespace=namespace)
        params: dict[str, str | int] = {
            k: v
            for k, v in {
                "tail": tail,
                "replica": replica,
                "level": level,
                "search": search,
                "since": since,
                "until": until,
            }.items()
            if v is not None
        }
        response = yield from self.exchange(
            Send("GET", self._url("endpoint", ns, name, "logs", version="v3"), params=params)
        )
        if response.status_code not in (404, 501):
            if response.is_error:
                response.read()
                raise error_from_response(response)
            return [LogLine.from_record(record) for record in log_records(response.text)]
        # v2 cannot filter: with filters, read further back (bounded) so that, as with v3, ``tail``
        # counts the lines that pass them rather than the lines read.
        filtering = any(v is not None for v in (level, search, since, until))
        v2: dict[str, str | int] = {"replica": replica} if replica is not None else {}
        if tail is not None:
            v2["tail"] = min(tail * V2_FILTER_READ_FACTOR, V2_FILTER_READ_MAX) if filtering else tail
        text = yield from self.request(Send("GET", self._url("endpoint", ns, name, "logs"), params=v2))
        lines = [LogLine.from_text(line) for line in text.text.splitlines() if line.strip()]
        kept = [
            line
            for line in lines
            if (level is None or (line.level or "").lower() == level.lower())
            and (search is None or search.lower() in line.message.lower())
            and (since is None or line.timestamp is None or line.timestamp >= since)
            and (until is None or line.timestamp is None or line.timestamp <= until)
        ]
        return kept[-tail:] if tail is not None else kept

    def replicas(self, *, name: str, namespace: str | None) -> Plan[list[Replica]]:
        validate_endpoint_name(name)
        ns = yield from self.resolve_namespace(namespace=namespace)
        response = yield from self.request(Send("GET", self._url("endpoint", ns, name, "replica")))
        return decode(response, Replica.list_from_raw)

    def metrics(
        self, *, name: str, namespace: str | None, metric: str, start: float, end: float, step_seconds: int
    ) -> Plan[dict[str, Any]]:
        """One metric's series over ``[start, end]`` (epoch seconds), as the service answers it."""
        validate_endpoint_name(name)
        validate_metric(metric)
        if end <= start:
            raise InvalidEndpointArgumentError(
                "start", f"{start} is not before end={end}", "give a window whose start is before its end"
            )
        check_count("step_seconds", step_seconds, 1)
        ns = yield from self.resolve_namespace(namespace=namespace)
        endpoint = yield from self.get(name=name, namespace=ns)
        body = {
            "dnsPrefix": endpoint.dns_prefix,
            "from": int(start),
            "to": int(end),
            "step": f"{int(step_seconds)}s",
        }
        segments = ["endpoint", ns, name, "metrics", *metric.split("/")]
        response = yield from self.request(Send("POST", self._url(*segments), json=body))
        return decode(response, _object)

    def list_catalog(
        self,
        *,
        task: str | None,
        accelerator: str | None,
        engine: str | None,
        search: str | None,
        limit: int | None,
    ) -> Plan[list[CatalogModel]]:
        params = {
            k: v
            for k, v in {
                "task": task,
                "accelerator": accelerator,
                "engine": engine,
                "search": search,
                "limit": limit,
            }.items()
            if v is not None
        }
        response = yield from self.request(Send("GET", f"{self.catalog_url}/list", params=params))
        return decode(response, lambda page: [CatalogModel.from_raw(item) for item in page.get("items", [])])

    def deploy_from_catalog(
        self,
        *,
        namespace: str | None,
        repo_id: str | None,
        recipe_id: str | None,
        name: str | None,
        accelerator: str | None,
    ) -> Plan[InferenceEndpoint]:
        """Deploy a catalog model (by repository) or recipe; never re-sent blindly (it creates)."""
        if (repo_id is None) == (recipe_id is None):
            raise InvalidEndpointArgumentError(
                "repo_id",
                "give exactly one of repo_id and recipe_id",
                "name the model, or one of its recipes",
            )
        if name is not None:
            validate_endpoint_name(name)
        if repo_id is not None:
            validate_repo_id(repo_id)
        ns = yield from self.resolve_namespace(namespace=namespace)
        path = f"model/{quote(repo_id, safe='/')}" if repo_id else f"recipe/{quote(str(recipe_id), safe='')}"
        body: dict[str, Any] = {"namespace": ns}
        if name is not None:
            body["config"] = {"name": name}
        if accelerator is not None:
            body["accelerator"] = accelerator
        send = Send("POST", f"{self.catalog_url}/{path}/deploy", json=body)
        response = yield from self.request(send, retry_statuses=frozenset({429}), retry_transport=False)
        return decode(response, lambda answer: InferenceEndpoint.from_raw(answer["endpoint"], ns))

    def diagnose(
        self, *, name: str, namespace: str | None, secrets: Sequence[str], health_failing: bool = False
    ) -> Plan[Diagnosis]:
        """Read the endpoint, its log and replicas (whatever of them can be read) and explain the failure."""
        ns = yield from self.resolve_namespace(namespace=namespace)
        endpoint, logs, replicas, missing = None, [], [], []
        try:
            logs = yield from self.logs(name=name, namespace=ns, tail=200, secrets=secrets)
        except EndpointsError as exc:
            missing.append(f"its logs ({exc})")
        try:
            endpoint = yield from self.get(name=name, namespace=ns)
        except EndpointsError as exc:
            missing.append(f"the endpoint ({exc})")
        try:
            replicas = yield from self.replicas(name=name, namespace=ns)
        except EndpointsError as exc:
            missing.append(f"its replicas ({exc})")
        return explain(
            endpoint, logs, replicas, secrets=secrets, health_failing=health_failing, unavailable=missing
        )

    # -- the data plane and waiting ------------------------------------------------------------

    def health_status(self, *, endpoint: InferenceEndpoint, timeout: float | None = None) -> Plan[int | None]:
        """
        Ask the endpoint's health route; ``None`` if it has no URL or no answer came.

        The token goes along (an endpoint's routes are authenticated), so only where it may travel:
        an endpoint URL in plain http to another machine is refused (:class:`InsecureDestinationError`).
        """
        url = endpoint.health_url
        if url is None:
            return None
        check_token_destination(url, self.allow_insecure_http)
        try:
            response = yield from self.exchange(
                Send("GET", url, timeout=timeout), retry_statuses=frozenset(), retry_transport=False
            )
        except EndpointsTransportError as exc:
            log.info("Health check of %s got no answer: %s", endpoint.name, exc)
            return None
        return response.status_code

    def watch(self, **arguments: Any) -> Plan[WatchResult]:
        """Poll until a wait is over: :func:`airflow_provider_hfep.endpoints.watch.watch`."""
        return (yield from watching.watch(self, **arguments))

    def wait(self, **arguments: Any) -> Plan[InferenceEndpoint | None]:
        """Wait, raising the typed error of any ending but success: :func:`airflow_provider_hfep.endpoints.watch.wait`."""
        return (yield from watching.wait(self, **arguments))


def _object(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise TypeError(f"a {type(answer).__name__}, not an object")
    return answer
