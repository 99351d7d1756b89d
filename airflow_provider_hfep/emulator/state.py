"""
The emulated cloud's state: users, endpoints, their state clock and their billing meters.

Written apart from the client layer on purpose (it imports nothing from it): it is a second,
independent reading of the same HTTP contract, so a shared mistake cannot hide.

States move lazily on the wall clock: each endpoint keeps a timeline of scheduled transitions, applied
whenever it is looked at. Billing counts seconds spent in ``initializing``, ``running`` and ``updating``
(the states in which replicas run), times the replicas, per segment between transitions. Each replica
is recorded with its start and stop time (what the replica listing tells), so the listing and the
meter agree. An endpoint with ``minReplica: 0`` scales itself to zero after ``scaleToZeroTimeout``
minutes (15 by default) without a data-plane request, as the service does: the emulator's minute is
``Settings.minute_seconds`` long.
"""

from __future__ import annotations

import copy
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator.settings import Settings, User

BILLABLE_STATES = frozenset({"initializing", "running", "updating"})
#: stopped replicas the listing keeps (the newest)
STOPPED_REPLICAS_KEPT = 100
#: minutes a ``minReplica: 0`` endpoint idles before scaling to zero when ``scaleToZeroTimeout`` is unset
DEFAULT_SCALE_TO_ZERO_MINUTES = 15
STATE_MESSAGES = {
    "pending": "Endpoint waiting to be scheduled",
    "initializing": "Endpoint is initializing",
    "running": "Endpoint is ready",
    "updating": "Endpoint waiting for the update",
    "paused": "Endpoint is paused",
    "scaledToZero": "Endpoint is scaled to zero",
    "failed": "Endpoint failed to deploy",
    "updateFailed": "Endpoint failed to update",
}
STATES = frozenset(STATE_MESSAGES)


def capacity_message(compute: dict[str, Any], provider: dict[str, Any], status: str) -> str:
    """Word a lack of capacity as the service does: in a pending endpoint's message, or a refusal's."""
    what = f"{compute['instanceType']} {compute['instanceSize']} in {provider['vendor']}/{provider['region']}"
    if status == "not_available":
        return f"Insufficient capacity: {what} is not available now. Pick other hardware or retry later"
    return f"Endpoint waiting to be scheduled: insufficient capacity for {what} (low availability)"


def zulu(epoch: float) -> str:
    """Write an epoch as the API writes timestamps: ISO 8601, milliseconds, ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class ReplicaRecord:
    """One replica's life: when it started, when it stopped (``None`` while it runs), how it ended."""

    id: str
    started: float
    stopped: float | None = None
    exit_code: int | None = None


@dataclass
class Meter:
    """What an endpoint cost so far."""

    billable_seconds: float = 0.0
    replica_seconds: float = 0.0
    requests: int = 0


@dataclass
class Endpoint:
    """One emulated endpoint: its configuration (the API's JSON keys), state and timeline."""

    namespace: str
    name: str
    config: dict[str, Any]
    owner: str
    state: str
    message: str
    created_at: float
    updated_at: float
    url: str | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    #: every state it took: (epoch, state, message), what its logs tell
    history: list[tuple[float, str, str]] = field(default_factory=list)
    segment_start: float = 0.0
    meter: Meter = field(default_factory=Meter)
    in_flight: int = 0
    #: replicas the autoscaler added above the minimum, and when the load last called for more / was nil
    scaled_up: int = 0
    busy_since: float | None = None
    last_busy: float = 0.0
    idle_since: float | None = None
    #: every replica it ran (the stopped ones bounded): what the replica listing tells
    replica_log: list[ReplicaRecord] = field(default_factory=list)
    replica_serial: int = 0
    #: when a data-plane request last arrived or ended: the idle clock of scale-to-zero
    last_request: float = 0.0
    #: pending with no replica starting: its instance type has low availability in its region
    waiting_for_capacity: bool = False

    @property
    def min_replicas(self) -> int:
        return max(1, int(self.config["compute"]["scaling"].get("minReplica") or 0))

    @property
    def max_replicas(self) -> int:
        return max(self.min_replicas, int(self.config["compute"]["scaling"].get("maxReplica") or 1))

    @property
    def replicas(self) -> int:
        """Replicas that run (and bill) while the endpoint is up: the minimum, plus what autoscaling added."""
        return min(self.max_replicas, self.min_replicas + self.scaled_up)

    @property
    def accelerators(self) -> int:
        """Accelerators its replicas hold while it is up (``x4`` is four per replica)."""
        size = self.config["compute"]["instanceSize"]
        per_replica = int(size[1:]) if size[1:].isdigit() else 1
        return per_replica * self.replicas

    @property
    def holds_hardware(self) -> bool:
        """Whether it counts against the quota: everything but paused, scaled to zero or failed."""
        return self.state not in ("paused", "scaledToZero", "failed")

    @property
    def hardware_key(self) -> tuple[str, str, str]:
        """Where it runs: (vendor, region, instance type), the key of the cloud's availability."""
        provider = self.config["provider"]
        return provider["vendor"], provider["region"], self.config["compute"]["instanceType"]

    @property
    def health_route(self) -> str:
        image = self.config["model"].get("image") or {}
        for variant in image.values():
            if isinstance(variant, dict) and variant.get("healthRoute"):
                return variant["healthRoute"]
        return "/health"

    @property
    def task(self) -> str:
        return self.config["model"].get("task") or "text-generation"


def infer_task(repository: str) -> str:
    """Guess the task from the repository name, as the server does when ``model.task`` is omitted."""
    lowered = repository.lower()
    if any(word in lowered for word in ("minilm", "bge", "e5-", "embed", "sentence-transformers")):
        return "feature-extraction"
    if any(word in lowered for word in ("sentiment", "finbert", "sst", "classif")):
        return "text-classification"
    if "bart-large-cnn" in lowered or "summar" in lowered:
        return "summarization"
    return "text-generation"


def deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """
    Merge ``changes`` into a copy of ``base``, dicts recursively (how the API applies a PUT).

    ``model.image`` is a union: a new variant replaces the old one instead of merging beside it.
    """
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if key == "image" or not (isinstance(value, dict) and isinstance(merged.get(key), dict)):
            merged[key] = copy.deepcopy(value)
        else:
            merged[key] = deep_merge(merged[key], value)
    return merged


class World:
    """All endpoints of the emulated cloud, keyed by (namespace, name)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.base_url = ""
        self.endpoints: dict[tuple[str, str], Endpoint] = {}
        self.deleted_meters: dict[tuple[str, str], Meter] = {}
        self.unbilled_namespaces: set[str] = set()
        self.quotas: dict[tuple[str, str, str], int] = dict(settings.quotas)
        self.logs_v3 = settings.logs_v3
        self.availability: dict[tuple[str, str, str], str] = dict(settings.availability)
        #: availability changes to come: (epoch, (vendor, region, instance type), status), in time order
        self.availability_changes: list[tuple[float, tuple[str, str, str], str]] = []
        #: when each instance type's availability last changed
        self.availability_since: dict[tuple[str, str, str], float] = {}
        self._tokens = {user.token: user for user in settings.users}

    def reset(self) -> None:
        self.endpoints.clear()
        self.deleted_meters.clear()
        self.unbilled_namespaces.clear()
        self.quotas = dict(self.settings.quotas)
        self.logs_v3 = self.settings.logs_v3
        self.availability = dict(self.settings.availability)
        self.availability_changes.clear()
        self.availability_since.clear()

    # -- capacity ------------------------------------------------------------------------------

    def availability_of(self, key: tuple[str, str, str], now: float | None = None) -> str:
        """How much of an instance type a region has now: ``available``, ``low_availability``, ``not_available``."""
        now = time.time() if now is None else now
        while self.availability_changes and self.availability_changes[0][0] <= now:
            at, changed, status = self.availability_changes.pop(0)
            self.availability[changed], self.availability_since[changed] = status, at
        return self.availability.get(key, "available")

    def set_availability(self, key: tuple[str, str, str], status: str, in_seconds: float = 0.0) -> None:
        """Change an instance type's availability in a region, now or ``in_seconds`` from now."""
        if in_seconds <= 0:
            self.availability_of(key)  # changes due before this one apply first
            self.availability[key], self.availability_since[key] = status, time.time()
            return
        self.availability_changes.append((time.time() + in_seconds, key, status))
        self.availability_changes.sort(key=lambda change: change[0])

    def deploy(self, endpoint: Endpoint, now: float) -> None:
        """
        Schedule a deployment from ``pending``: at once where its instance type is available.

        Where the region has low availability it stays ``pending`` with no replica starting (the
        message says why) until the availability changes.
        """
        if self.availability_of(endpoint.hardware_key, now) == "low_availability":
            endpoint.timeline.clear()
            endpoint.waiting_for_capacity = True
            message = capacity_message(endpoint.config["compute"], endpoint.config["provider"], "low")
            if endpoint.state != "pending":
                self.set_state(endpoint, "pending", now, message)
            elif endpoint.message != message:  # already pending: the reason is what changes
                endpoint.message = message
                endpoint.history.append((now, "pending", message))
            return
        endpoint.waiting_for_capacity = False
        self.schedule(endpoint, self.deploy_steps(self.settings.deploy_seconds), now)

    # -- quotas ----------------------------------------------------------------------------------

    def quota(self, namespace: str, vendor: str, instance_type: str) -> int:
        return self.quotas.get((namespace, vendor, instance_type), self.settings.default_quota)

    def used(self, namespace: str, vendor: str, instance_type: str, but: Endpoint | None = None) -> int:
        """Accelerators of this type the namespace's endpoints hold now (``but`` one of them)."""
        return sum(
            endpoint.accelerators
            for (ns, _), endpoint in self.endpoints.items()
            if ns == namespace
            and endpoint is not but
            and self.advance(endpoint).holds_hardware
            and endpoint.config["provider"]["vendor"] == vendor
            and endpoint.config["compute"]["instanceType"] == instance_type
        )

    def user_for(self, token: str | None) -> User | None:
        return self._tokens.get(token) if token else None

    # -- the clock -----------------------------------------------------------------------------

    def _account(self, endpoint: Endpoint, until: float) -> None:
        if endpoint.state in BILLABLE_STATES and until > endpoint.segment_start:
            seconds = until - endpoint.segment_start
            endpoint.meter.billable_seconds += seconds
            endpoint.meter.replica_seconds += seconds * endpoint.replicas
        endpoint.segment_start = max(endpoint.segment_start, until)

    def _sync_replicas(self, endpoint: Endpoint, at: float) -> None:
        """Start or stop replica records at ``at`` so that they match the replicas the endpoint runs now."""
        wanted = endpoint.replicas if endpoint.state in BILLABLE_STATES else 0
        live = [record for record in endpoint.replica_log if record.stopped is None]
        crashed = endpoint.state in ("failed", "updateFailed")
        for record in live[wanted:]:  # the newest go first
            record.stopped = at
            record.exit_code = exit_code(endpoint.message) if crashed else None
        digest = hashlib.sha1(f"{endpoint.namespace}/{endpoint.name}".encode()).hexdigest()[:5]

        def start(stopped: float | None = None, code: int | None = None) -> None:
            endpoint.replica_serial += 1
            name = f"{endpoint.name}-{digest}-{endpoint.replica_serial}"
            endpoint.replica_log.append(ReplicaRecord(name, at, stopped, code))

        for _ in range(wanted - len(live)):
            start()
        if crashed and not live:  # it failed before running: its container started, and crashed at once
            start(at, exit_code(endpoint.message))
        stopped = [record for record in endpoint.replica_log if record.stopped is not None]
        for record in stopped[:-STOPPED_REPLICAS_KEPT]:
            endpoint.replica_log.remove(record)

    def set_state(self, endpoint: Endpoint, state: str, at: float, message: str | None = None) -> None:
        """Move ``endpoint`` to ``state`` at time ``at``, closing the billing segment of the old state."""
        self._account(endpoint, at)
        endpoint.state = state
        endpoint.message = message or STATE_MESSAGES[state]
        endpoint.updated_at = at
        endpoint.history.append((at, state, endpoint.message))
        if state not in ("running", "updating"):
            endpoint.scaled_up, endpoint.busy_since, endpoint.idle_since = 0, None, None
        self._sync_replicas(endpoint, at)
        if state == "paused":
            endpoint.url = None
        elif state in ("initializing", "running", "updating", "scaledToZero") and endpoint.url is None:
            endpoint.url = f"{self.base_url}/endpoints/{endpoint.namespace}/{endpoint.name}"

    def schedule(self, endpoint: Endpoint, steps: list[tuple[float, str]], now: float) -> None:
        """Replace the endpoint's future with ``steps``: (seconds from now, state) pairs."""
        endpoint.timeline = [(now + delay, state) for delay, state in steps]

    def advance(self, endpoint: Endpoint, now: float | None = None) -> Endpoint:
        """Apply the transitions that are due; return the endpoint for chaining."""
        now = time.time() if now is None else now
        if (
            endpoint.waiting_for_capacity
            and endpoint.state == "pending"
            and self.availability_of(endpoint.hardware_key, now) != "low_availability"
        ):
            # Capacity came back: the deployment started then, however late a read notices it.
            endpoint.waiting_for_capacity = False
            since = max(endpoint.updated_at, self.availability_since.get(endpoint.hardware_key, now))
            self.set_state(endpoint, "pending", since)
            self.schedule(endpoint, self.deploy_steps(self.settings.deploy_seconds), since)
        while endpoint.timeline and endpoint.timeline[0][0] <= now:
            at, state = endpoint.timeline.pop(0)
            self.set_state(endpoint, state, at)
        self.scale_to_zero_when_idle(endpoint, now)
        self.autoscale(endpoint, now)
        return endpoint

    def scale_to_zero_when_idle(self, endpoint: Endpoint, now: float) -> None:
        """
        Scale a ``minReplica: 0`` endpoint to zero once it has had no request for ``scaleToZeroTimeout`` minutes.

        No client is involved: the service does it (at the moment it was due, however late a read
        notices it), and billing stops then. The next request wakes it, as after any scale-to-zero.
        """
        scaling = endpoint.config["compute"]["scaling"]
        if endpoint.state != "running" or int(scaling.get("minReplica") or 0) != 0 or endpoint.in_flight:
            return
        minutes = scaling.get("scaleToZeroTimeout") or DEFAULT_SCALE_TO_ZERO_MINUTES
        due = max(endpoint.last_request, endpoint.updated_at) + minutes * self.settings.minute_seconds
        if now >= due:
            endpoint.timeline.clear()
            self.set_state(
                endpoint, "scaledToZero", due, f"Scaled to zero after {minutes:g} minutes without requests"
            )

    def autoscale(self, endpoint: Endpoint, now: float) -> None:
        """
        Add a replica (up to ``maxReplica``) after ``scale_up_seconds`` of load, remove one after ``scale_down_seconds`` idle.

        Load is requests in flight at the endpoint's threshold: ``measure.pendingRequests`` per replica
        if set, else 80 % of the capacity. Called on each data-plane request and each read, so the
        change shows in the management API, the replica listing, the capacity and the billing meter.
        """
        if endpoint.state not in ("running", "updating"):
            return
        measure = endpoint.config["compute"]["scaling"].get("measure") or {}
        threshold = measure.get("pendingRequests") or 0.8 * self.settings.capacity
        if endpoint.in_flight >= threshold * endpoint.replicas:
            endpoint.last_busy, endpoint.idle_since = now, None
            endpoint.busy_since = endpoint.busy_since or now
            if (
                now - endpoint.busy_since >= self.settings.scale_up_seconds
                and endpoint.replicas < endpoint.max_replicas
            ):
                self._account(endpoint, now)
                endpoint.scaled_up += 1
                self._sync_replicas(endpoint, now)
                endpoint.busy_since = now  # the next one needs its own stretch of load
            return
        if now - endpoint.last_busy > 1.0:
            endpoint.busy_since = None
        if endpoint.in_flight:
            endpoint.idle_since = None
            return
        endpoint.idle_since = endpoint.idle_since or now
        # Each removal happens (and is billed) when it was due, however late a read notices it.
        while endpoint.scaled_up and now - endpoint.idle_since >= self.settings.scale_down_seconds:
            due = endpoint.idle_since + self.settings.scale_down_seconds
            self._account(endpoint, due)
            endpoint.scaled_up -= 1
            self._sync_replicas(endpoint, due)
            endpoint.idle_since = due

    def deploy_steps(self, seconds: float) -> list[tuple[float, str]]:
        return [(0.25 * seconds, "initializing"), (seconds, "running")]

    # -- lookups -------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> Endpoint | None:
        endpoint = self.endpoints.get((namespace, name))
        return None if endpoint is None else self.advance(endpoint)

    def in_namespace(self, namespace: str) -> list[Endpoint]:
        return [self.advance(e) for (ns, _), e in sorted(self.endpoints.items()) if ns == namespace]

    # -- lifecycle -----------------------------------------------------------------------------

    def create(self, namespace: str, body: dict[str, Any], owner: str, state: str = "pending") -> Endpoint:
        now = time.time()
        config = copy.deepcopy(body)
        model = config["model"]
        if not model.get("revision"):  # the service pins the revision it deployed: the commit of main
            model["revision"] = hashlib.sha1(f"{model['repository']}@main".encode()).hexdigest()
        if model.get("task") is None:
            model["task"] = infer_task(model["repository"])
        model.setdefault("env", {})
        model.setdefault("secrets", {})
        config.pop("accountId", None)
        # Fields every 2026 answer carries; a create body's top-level cacheHttpResponses lands here.
        config.setdefault("tags", [])
        features = config.setdefault("experimentalFeatures", {})
        if "cacheHttpResponses" in config:
            features["cacheHttpResponses"] = config.pop("cacheHttpResponses")
        config.setdefault("notifications", {})
        endpoint = Endpoint(
            namespace,
            body["name"],
            config,
            owner,
            "pending",
            STATE_MESSAGES["pending"],
            now,
            now,
            history=[(now, "pending", STATE_MESSAGES["pending"])],
            segment_start=now,
        )
        self.endpoints[(namespace, endpoint.name)] = endpoint
        if state == "pending":
            self.deploy(endpoint, now)
        else:
            self.set_state(endpoint, state, now)
        return endpoint

    def update(self, endpoint: Endpoint, changes: dict[str, Any]) -> None:
        now = time.time()
        changes = dict(changes)
        if "cacheHttpResponses" in changes:
            features = {
                **changes.get("experimentalFeatures", {}),
                "cacheHttpResponses": changes.pop("cacheHttpResponses"),
            }
            changes["experimentalFeatures"] = features
        self._account(
            endpoint, now
        )  # a change of replicas bills from now on, not back to the segment's start
        endpoint.config = deep_merge(endpoint.config, changes)
        self._sync_replicas(endpoint, now)
        if endpoint.state in ("paused", "scaledToZero"):
            endpoint.updated_at = now
            return
        if endpoint.state in ("pending", "initializing"):
            self.deploy(endpoint, now)
            return
        # Like the real service, the answer to the PUT (and reads just after it) still show the old
        # state for a moment before "updating": a client that trusts that first read races.
        lag = self.settings.update_lag_seconds
        self.schedule(endpoint, [(lag, "updating"), (lag + self.settings.deploy_seconds, "running")], now)

    def pause(self, endpoint: Endpoint) -> None:
        endpoint.timeline.clear()
        endpoint.waiting_for_capacity = False
        if endpoint.state != "paused":
            self.set_state(endpoint, "paused", time.time())

    def scale_to_zero(self, endpoint: Endpoint) -> None:
        endpoint.timeline.clear()
        endpoint.waiting_for_capacity = False
        if endpoint.state != "scaledToZero":
            self.set_state(endpoint, "scaledToZero", time.time())

    def resume(self, endpoint: Endpoint) -> None:
        now = time.time()
        if endpoint.state == "scaledToZero":
            self.wake(endpoint)
            return
        self.set_state(endpoint, "pending", now)
        self.deploy(endpoint, now)

    def wake(self, endpoint: Endpoint) -> None:
        """Start a replica of a scaled-to-zero endpoint that got a request (cold start)."""
        now = time.time()
        self.set_state(endpoint, "initializing", now)
        self.schedule(endpoint, [(self.settings.cold_start_seconds, "running")], now)

    def force(self, endpoint: Endpoint, state: str, message: str | None) -> None:
        endpoint.timeline.clear()
        endpoint.waiting_for_capacity = False
        self.set_state(endpoint, state, time.time(), message)

    def delete(self, endpoint: Endpoint) -> None:
        self._account(endpoint, time.time())
        self.deleted_meters[(endpoint.namespace, endpoint.name)] = endpoint.meter
        del self.endpoints[(endpoint.namespace, endpoint.name)]

    def meter(self, namespace: str, name: str) -> Meter | None:
        """Return the billing meter, counted up to now (deleted endpoints keep their final meter)."""
        endpoint = self.get(namespace, name)
        if endpoint is None:
            return self.deleted_meters.get((namespace, name))
        self._account(endpoint, time.time())
        return endpoint.meter

    # -- the JSON the API returns --------------------------------------------------------------

    def to_json(self, endpoint: Endpoint) -> dict[str, Any]:
        config = copy.deepcopy(endpoint.config)
        model = config["model"]
        model["secrets"] = {key: "" for key in model.get("secrets", {})}  # the API never echoes secret values
        for variant in (model.get("image") or {}).values():
            if isinstance(variant, dict) and isinstance(variant.get("credentials"), dict):
                variant["credentials"] = {"username": "", "password": None}
        compute = config["compute"]
        if compute["scaling"].get("scaleToZeroTimeout") is None:  # unset: absent, never null
            compute["scaling"].pop("scaleToZeroTimeout", None)
        compute["id"] = "-".join(
            (
                config["provider"]["vendor"],
                config["provider"]["region"],
                compute["instanceType"],
                compute["instanceSize"],
            )
        )
        up = endpoint.state in ("running", "updating")
        status: dict[str, Any] = {
            "createdAt": zulu(endpoint.created_at),
            "createdBy": {"id": _user_id(endpoint.owner), "name": endpoint.owner},
            "updatedAt": zulu(endpoint.updated_at),
            "updatedBy": {"id": _user_id(endpoint.owner), "name": endpoint.owner},
            "private": None,
            "state": endpoint.state,
            "message": endpoint.message,
            "readyReplica": endpoint.replicas if up else 0,
            "targetReplica": 0 if endpoint.state in ("paused", "scaledToZero") else endpoint.replicas,
        }
        if endpoint.url is not None:
            status["url"] = endpoint.url
        return {**config, "healthRoute": endpoint.health_route, "status": status}


def _user_id(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()[:24]


def exit_code(message: str) -> int:
    """137 (killed) for memory trouble, as a container killed by the kernel reports; 1 otherwise."""
    lowered = message.lower()
    return 137 if "memory" in lowered or "oom" in lowered else 1
