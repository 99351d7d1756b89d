"""
The endpoints of a connection, read through the hook's client and kept briefly.

One page load reads the API at most once per connection: the listing (paged: one request per page of
endpoints), the hardware listing (the prices) and, when the connection names no namespace, whoami.
Kept ``CACHE_SECONDS``, so reloads and the other users' loads in that time read nothing; a pause or a
resume from the page forgets the connection's entry. The calls block: the app runs them in a worker
thread, never on the API server's event loop.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_provider_hfep.endpoints.costs import price_per_hour
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.inference.engines import engine_for
from airflow_provider_hfep.links.endpoint import ENDPOINT_PAGE

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_hfep.endpoints.models import HardwareOption, InferenceEndpoint

__all__ = ["CACHE_SECONDS", "EndpointRow", "Listing", "ListingCache", "row_of"]

#: seconds a connection's listing is kept
CACHE_SECONDS = 20.0


@dataclass(frozen=True)
class EndpointRow:
    """
    One endpoint as the page shows it.

    :param name: its name.
    :param namespace: its namespace.
    :param state: its state.
    :param model: the model repository (and revision, when pinned).
    :param engine: the engine its image runs (TGI, TEI, vLLM...).
    :param hardware: vendor/region, instance type and size.
    :param replicas: ready / target, and the min-max range.
    :param price_per_hour: USD per replica-hour from the hardware listing, if it has the instance.
    :param console_url: its page in the Hugging Face console.
    :param paused: whether it is paused (the page offers a resume rather than a pause).
    """

    name: str
    namespace: str
    state: str
    model: str
    engine: str
    hardware: str
    replicas: str
    price_per_hour: float | None
    console_url: str
    paused: bool

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def row_of(endpoint: InferenceEndpoint, hardware: list[HardwareOption]) -> EndpointRow:
    """Describe an endpoint for the page (pure)."""
    state = str(endpoint.status)
    return EndpointRow(
        name=endpoint.name,
        namespace=endpoint.namespace,
        state=state,
        model=f"{endpoint.repository}@{endpoint.revision}" if endpoint.revision else endpoint.repository,
        engine=engine_for(endpoint.image_kind).name,
        hardware=(
            f"{endpoint.vendor or '?'}/{endpoint.region or '?'} "
            f"{endpoint.instance_type or '?'} {endpoint.instance_size or '?'}"
        ),
        replicas=(
            f"{endpoint.ready_replicas}/{endpoint.target_replicas} "
            f"({endpoint.min_replica}-{endpoint.max_replica})"
        ),
        price_per_hour=price_per_hour(hardware, endpoint.to_dict()),
        console_url=ENDPOINT_PAGE.format(namespace=endpoint.namespace, name=endpoint.name),
        paused=state == "paused",
    )


@dataclass(frozen=True)
class Listing:
    """
    A connection's endpoints as read at one moment, or why they could not be.

    :param endpoints: the endpoints, by name.
    :param read_at: when they were read (``time.time()``).
    :param error: why they could not be read, if so (the token never appears: the errors carry the
        server's message, and the client keeps the token out of its reprs).
    """

    endpoints: tuple[EndpointRow, ...]
    read_at: float
    error: str | None = None


def read_listing(conn_id: str) -> Listing:
    """Read a connection's endpoints and prices (blocking: run it in a worker thread)."""
    hook = HuggingFaceEndpointHook(conn_id)
    try:
        client = hook.client
        try:
            namespace = client.resolve_namespace()
            endpoints = client.list_endpoints(namespace)
            hardware = client.list_hardware(namespace) if len(endpoints) else []
        finally:
            client.close()
    except Exception as exc:  # shown on the page, in place of the table: any failure must reach it
        return Listing(endpoints=(), read_at=time.time(), error=f"{type(exc).__name__}: {exc}")
    rows = sorted((row_of(e, hardware) for e in endpoints), key=lambda r: r.key)
    return Listing(endpoints=tuple(rows), read_at=time.time())


class ListingCache:
    """
    Each connection's listing, kept ``ttl`` seconds; loads of one connection at the same time share a read.

    :param read: reads a connection's listing (``read_listing``; tests and benchmarks pass their own).
    :param ttl: seconds a listing is kept.
    :param clock: the clock the ttl is measured on.
    """

    def __init__(
        self,
        read: Callable[[str], Listing] = read_listing,
        ttl: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read, self._ttl, self._clock = read, ttl, clock
        self._entries: dict[str, tuple[float, Listing]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @property
    def ttl(self) -> float:
        return self._ttl

    def get(self, conn_id: str) -> Listing:
        """Return the connection's listing, read now if the kept one is older than the ttl (blocking)."""
        with self._guard:
            lock = self._locks.setdefault(conn_id, threading.Lock())
        with lock:
            kept = self._entries.get(conn_id)
            if kept is not None and self._clock() - kept[0] < self._ttl:
                return kept[1]
            listing = self._read(conn_id)
            if listing.error is None:  # a failure is read again at the next load
                self._entries[conn_id] = (self._clock(), listing)
            return listing

    def forget(self, conn_id: str) -> None:
        """Drop a connection's listing (after a pause or resume from the page)."""
        with self._guard:
            self._entries.pop(conn_id, None)
