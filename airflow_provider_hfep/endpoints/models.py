"""The endpoint as the API describes it: one dataclass, its enums, and the hardware listing."""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class EndpointStatus(StrEnum):
    """The eight states of an endpoint, with the API's exact strings."""

    PENDING = "pending"
    INITIALIZING = "initializing"
    UPDATING = "updating"
    UPDATE_FAILED = "updateFailed"
    RUNNING = "running"
    PAUSED = "paused"
    FAILED = "failed"
    SCALED_TO_ZERO = "scaledToZero"


class EndpointType(StrEnum):
    """Who may call a deployed endpoint. ``protected`` is legacy and refused (see payloads)."""

    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    PRIVATE = "private"


class ScalingMetric(StrEnum):
    """What the autoscaler watches."""

    PENDING_REQUESTS = "pendingRequests"
    HARDWARE_USAGE = "hardwareUsage"


def parse_timestamp(value: str) -> datetime:
    """
    Parse the API's ``Z``-suffixed ISO timestamps into aware UTC datetimes.

    Fractional seconds of any length are accepted (the API sends up to nine digits, Python's
    parser takes at most six).
    """
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1]
    if "+" in text[10:]:
        text = text[: text.index("+", 10)]
    if "." in text:
        whole, fraction = text.split(".", 1)
        text = f"{whole}.{fraction[:6].ljust(6, '0')}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _status(value: str) -> EndpointStatus | str:
    try:
        return EndpointStatus(value)
    except ValueError:  # a state this client does not know yet: keep the server's word
        return value


_REDACTED = "***"


def _of(value: Any, what: str, kind: type) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{what} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def _field(raw: dict[str, Any], key: str, kind: type, *, optional: bool = False) -> Any:
    """Read ``raw[key]``, which must be a ``kind`` (or absent or null when ``optional``)."""
    if optional and raw.get(key) is None:
        return None
    if key not in raw:
        raise KeyError(f"no {key!r}")
    if kind is float:
        kind = (int, float)  # type: ignore[assignment]
    if not isinstance(raw[key], kind) or isinstance(raw[key], bool) and kind is not bool:
        raise TypeError(f"{key!r} is a {type(raw[key]).__name__}")
    return raw[key]


def items_of(raw: Any, what: str, *keys: str) -> list[Any]:
    """
    Find the list an answer carries: the answer itself, the value of one of ``keys``, or its only list.

    For answers whose wrapper the API does not publish (replicas, quotas, v3 logs): a list under
    another name is still read; an answer with no list at all is logged, never silently empty.
    """
    if isinstance(raw, list):
        return raw
    if isinstance(raw, dict):
        for key in keys:
            if isinstance(raw.get(key), list):
                return raw[key]
        lists = [value for value in raw.values() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0]
    log.warning("The %s answer has no list this provider can read: %.200r", what, raw)
    return []


def log_records(text: str) -> list[Any]:
    """Read the records of a v3 log answer: one JSON document (whatever its wrapper), or JSON lines."""
    try:
        return items_of(json.loads(text), "logs", "logs", "items", "data")
    except ValueError:
        records: list[Any] = []
        for line in text.splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError:
                    records.append(line)
        return records


def _redact_secrets(raw: dict[str, Any]) -> dict[str, Any]:
    """Copy ``raw`` with secret values hidden, so a dict made for XCom never carries them."""
    safe = copy.deepcopy(raw)
    model = safe.get("model")
    if isinstance(model, dict):
        if isinstance(model.get("secrets"), dict):
            model["secrets"] = {key: _REDACTED for key in model["secrets"]}
        image = model.get("image")
        if isinstance(image, dict):
            for variant in image.values():
                credentials = variant.get("credentials") if isinstance(variant, dict) else None
                if isinstance(credentials, dict) and credentials.get("password"):
                    credentials["password"] = _REDACTED
    return safe


@dataclass(frozen=True)
class InferenceEndpoint:
    """
    An Inference Endpoint as last read from the API.

    Immutable on purpose: a value read at one moment, never a live handle that silently goes stale
    (the source of huggingface_hub's update/wait race). Read it again to see a newer state.

    :param name: the endpoint's name.
    :param namespace: the user or organisation that owns it.
    :param repository: the model repository it serves.
    :param status: its state (an :class:`EndpointStatus`, or the raw string if unknown).
    :param url: the data-plane URL; ``None`` until provisioned and while paused.
    :param framework: the model framework (e.g. ``pytorch``).
    :param revision: the model revision, if pinned.
    :param task: the task it serves, if known.
    :param type: who may call it (``public``, ``authenticated``, ``private``).
    :param health_route: the path of its health check on the data plane.
    :param message: the status message the service gives (the reason of a failure).
    :param created_at: when it was created (aware, UTC).
    :param updated_at: when its status last changed (aware, UTC).
    :param tags: its tags.
    :param image_kind: the kind of container that serves it (``tgi``, ``tei``, ``vLLM``, ``custom``...).
    :param experimental_features: the experimental features it has turned on (``cacheHttpResponses``...).
    :param route: its custom routing (``domain``, ``path``), ``None`` without one.
    :param vendor: the cloud vendor it runs at (``aws``, ``azure``, ``gcp``).
    :param region: the vendor's region.
    :param accelerator: ``cpu``, ``gpu`` or ``neuron``.
    :param instance_type: e.g. ``nvidia-l4``.
    :param instance_size: e.g. ``x1``.
    :param min_replica: the fewest replicas it scales to (0: it may scale to zero).
    :param max_replica: the most replicas it scales to.
    :param scale_to_zero_timeout: minutes idle before the service scales it to zero, if set.
    :param ready_replicas: replicas that serve now.
    :param target_replicas: replicas it is scaling to now.
    :param from_catalog: whether it was deployed from the model catalog.
    :param raw: the whole JSON object the API returned.
    """

    name: str
    namespace: str
    repository: str
    status: EndpointStatus | str
    url: str | None
    framework: str
    revision: str | None
    task: str | None
    type: str
    health_route: str
    message: str
    created_at: datetime
    updated_at: datetime
    tags: tuple[str, ...] = ()
    image_kind: str | None = None
    experimental_features: dict[str, Any] = field(default_factory=dict, compare=False)
    route: dict[str, Any] | None = field(default=None, compare=False)
    vendor: str | None = None
    region: str | None = None
    accelerator: str | None = None
    instance_type: str | None = None
    instance_size: str | None = None
    min_replica: int = 0
    max_replica: int = 1
    scale_to_zero_timeout: int | None = None
    ready_replicas: int = 0
    target_replicas: int = 0
    from_catalog: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], namespace: str) -> InferenceEndpoint:
        """
        Build from the API's JSON. ``namespace`` is the one it was read under.

        The fields this package acts on are checked, with their types: a missing or mistyped one is a
        ``KeyError`` or ``TypeError`` (the client reports it as a malformed answer), never a value
        that misleads later (a state that is not a string, a URL that is a number).
        """
        _of(raw, "the endpoint", dict)
        status = _field(raw, "status", dict)
        model = _field(raw, "model", dict)
        image = _field(model, "image", dict, optional=True) or {}
        tags = _field(raw, "tags", list, optional=True) or []
        compute = _field(raw, "compute", dict, optional=True) or {}
        scaling = _field(compute, "scaling", dict, optional=True) or {}
        provider = _field(raw, "provider", dict, optional=True) or {}
        if not all(isinstance(tag, str) for tag in tags):
            raise TypeError("tags holds a value that is not a string")
        return cls(
            name=_field(raw, "name", str),
            namespace=namespace,
            repository=_field(model, "repository", str),
            status=_status(_field(status, "state", str)),
            url=_field(status, "url", str, optional=True),
            framework=_field(model, "framework", str),
            revision=_field(model, "revision", str, optional=True),
            task=_field(model, "task", str, optional=True),
            type=_field(raw, "type", str),
            health_route=_field(raw, "healthRoute", str, optional=True) or "/health",
            message=_field(status, "message", str, optional=True) or "",
            created_at=parse_timestamp(_field(status, "createdAt", str)),
            updated_at=parse_timestamp(_field(status, "updatedAt", str)),
            tags=tuple(tags),
            image_kind=next(iter(image), None),
            experimental_features=dict(_field(raw, "experimentalFeatures", dict, optional=True) or {}),
            route=_field(raw, "route", dict, optional=True),
            vendor=_field(provider, "vendor", str, optional=True),
            region=_field(provider, "region", str, optional=True),
            accelerator=_field(compute, "accelerator", str, optional=True),
            instance_type=_field(compute, "instanceType", str, optional=True),
            instance_size=_field(compute, "instanceSize", str, optional=True),
            min_replica=_field(scaling, "minReplica", int, optional=True) or 0,
            max_replica=_field(scaling, "maxReplica", int, optional=True) or 1,
            scale_to_zero_timeout=_field(scaling, "scaleToZeroTimeout", int, optional=True),
            ready_replicas=_field(status, "readyReplica", int, optional=True) or 0,
            target_replicas=_field(status, "targetReplica", int, optional=True) or 0,
            from_catalog=bool(model.get("fromCatalog")),
            raw=raw,
        )

    @property
    def hardware(self) -> tuple[str | None, str | None, str | None, str | None]:
        """Where it runs: vendor, region, instance type and size (the key of the hardware listing)."""
        return self.vendor, self.region, self.instance_type, self.instance_size

    @property
    def dns_prefix(self) -> str:
        """The first label of its URL's host name (what the metrics routes take), else its name."""
        host = urlsplit(self.url).hostname if self.url else None
        if host and "." in host:
            try:
                ipaddress.ip_address(host)
            except ValueError:
                return host.split(".", 1)[0]
        return self.name

    @property
    def health_url(self) -> str | None:
        """The full URL of the health check, or ``None`` while the endpoint has no URL."""
        if self.url is None:
            return None
        return f"{self.url.rstrip('/')}/{self.health_route.lstrip('/')}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-safe dict (XCom-ready): strings, ISO timestamps, ``raw`` with secrets hidden."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "repository": self.repository,
            "status": str(self.status),
            "url": self.url,
            "framework": self.framework,
            "revision": self.revision,
            "task": self.task,
            "type": self.type,
            "health_route": self.health_route,
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "tags": list(self.tags),
            "image_kind": self.image_kind,
            "experimental_features": self.experimental_features,
            "route": self.route,
            "vendor": self.vendor,
            "region": self.region,
            "accelerator": self.accelerator,
            "instance_type": self.instance_type,
            "instance_size": self.instance_size,
            "min_replica": self.min_replica,
            "max_replica": self.max_replica,
            "scale_to_zero_timeout": self.scale_to_zero_timeout,
            "ready_replicas": self.ready_replicas,
            "target_replicas": self.target_replicas,
            "from_catalog": self.from_catalog,
            "raw": _redact_secrets(self.raw),
        }


@dataclass(frozen=True)
class EndpointListing:
    """
    The result of listing endpoints, with the namespaces that could not be listed.

    Listing ``*`` walks the user and each of their organisations; one organisation refusing (no
    billing, no access) must not hide the others, nor silently vanish as in huggingface_hub.

    :param endpoints: every endpoint that could be listed.
    :param failures: namespace -> the error that prevented listing it.
    """

    endpoints: list[InferenceEndpoint]
    failures: dict[str, Exception] = field(default_factory=dict)

    def __iter__(self):
        return iter(self.endpoints)

    def __len__(self) -> int:
        return len(self.endpoints)


@dataclass(frozen=True)
class HardwareOption:
    """
    One compute offer from ``GET /v2/provider/{namespace}``.

    :param vendor: cloud vendor (``aws``, ``azure``, ``gcp``).
    :param region: region name (e.g. ``us-east-1``).
    :param id: the compute's id (e.g. ``aws-us-east-1-nvidia-l4-x1``).
    :param accelerator: ``cpu``, ``gpu`` or ``neuron``.
    :param instance_type: e.g. ``nvidia-l4``.
    :param instance_size: e.g. ``x1``.
    :param architecture: human name of the hardware.
    :param num_accelerators: accelerators per replica.
    :param memory_gb: memory per replica.
    :param gpu_memory_gb: GPU memory per accelerator (the 2026 API's meaning), ``None`` on CPU.
    :param price_per_hour: USD per replica-hour, for all of the replica's accelerators.
    :param status: ``available``, ``low_availability``, ``not_available``, ``reserved``, ``deprecated``.
    :param quota_max: accelerators of this type the namespace may hold, if the listing says.
    :param quota_used: accelerators of this type the namespace holds now, if the listing says.
    """

    vendor: str
    region: str
    id: str
    accelerator: str
    instance_type: str
    instance_size: str
    architecture: str
    num_accelerators: int
    memory_gb: float
    gpu_memory_gb: float | None
    price_per_hour: float
    status: str
    quota_max: int | None = None
    quota_used: int | None = None

    @classmethod
    def list_from_raw(cls, raw: dict[str, Any]) -> list[HardwareOption]:
        """Flatten the vendors -> regions -> computes tree (what the cost and the quota use is checked)."""
        _of(raw, "the hardware listing", dict)
        options = []
        for vendor in _field(raw, "vendors", list, optional=True) or []:
            _of(vendor, "a vendor", dict)
            for region in _field(vendor, "regions", list, optional=True) or []:
                _of(region, "a region", dict)
                for compute in _field(region, "computes", list, optional=True) or []:
                    options.append(
                        cls._read(_field(vendor, "name", str), _field(region, "name", str), compute)
                    )
        return options

    @classmethod
    def _read(cls, vendor: str, region: str, compute: Any) -> HardwareOption:
        _of(compute, "a compute", dict)
        quota = _field(compute, "quota", dict, optional=True) or {}
        return cls(
            vendor=vendor,
            region=region,
            id=_field(compute, "id", str),
            accelerator=_field(compute, "accelerator", str),
            instance_type=_field(compute, "instanceType", str),
            instance_size=_field(compute, "instanceSize", str),
            architecture=str(compute.get("architecture", "")),
            num_accelerators=_field(compute, "numAccelerators", int),
            memory_gb=_field(compute, "memoryGb", float),
            gpu_memory_gb=_field(compute, "gpuMemoryGb", float, optional=True),
            price_per_hour=float(_field(compute, "pricePerHour", float)),
            status=_field(compute, "status", str),
            quota_max=_field(quota, "maxAccelerators", int, optional=True),
            quota_used=_field(quota, "usedAccelerators", int, optional=True),
        )


@dataclass(frozen=True)
class LogLine:
    """
    One line of an endpoint's log.

    :param message: the text.
    :param timestamp: when it was written (as the service wrote it), if known.
    :param level: ``info``, ``warning``, ``error``... if known.
    :param replica: the replica that wrote it, if known.
    """

    message: str
    timestamp: str | None = None
    level: str | None = None
    replica: str | None = None

    @classmethod
    def from_record(cls, record: Any) -> LogLine:
        """Read one v3 record, whatever of its keys the service filled in (its schema is not published)."""
        if not isinstance(record, dict):
            return cls(message=str(record))
        message = record.get("message", record.get("msg", record.get("text", "")))
        return cls(
            message=str(message),
            timestamp=record.get("timestamp", record.get("time")),
            level=(record.get("level") or record.get("severity") or None),
            replica=record.get("replica", record.get("replicaId")),
        )

    @classmethod
    def from_text(cls, line: str) -> LogLine:
        """Read one v2 line: ``<timestamp> <LEVEL> <replica> <message>`` when it has that shape."""
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0][:4].isdigit() and parts[1].isupper():
            replica = None if parts[2] == "-" else parts[2]
            return cls(message=parts[3], timestamp=parts[0], level=parts[1].lower(), replica=replica)
        return cls(message=line)

    def __str__(self) -> str:
        head = " ".join(p for p in (self.timestamp, (self.level or "").upper(), self.replica) if p)
        return f"{head} {self.message}" if head else self.message


@dataclass(frozen=True)
class Replica:
    """
    One replica of an endpoint (``GET .../replica``).

    :param id: its name.
    :param live: whether it serves.
    :param updating: whether it is being replaced by an update.
    :param stage: where it is in its life (``starting``, ``running``, ``failed``...).
    :param exit_code: the exit code of its container, once it stopped.
    :param started_at: when it started.
    :param stopped_at: when it stopped.
    """

    id: str | None
    live: bool
    updating: bool
    stage: str | None
    exit_code: int | None = None
    started_at: str | None = None
    stopped_at: str | None = None

    @classmethod
    def list_from_raw(cls, raw: Any) -> list[Replica]:
        return [
            cls(
                id=item.get("id", item.get("name", item.get("replicaId", f"replica-{index}"))),
                live=bool(item.get("live")),
                updating=bool(item.get("updating")),
                stage=item.get("stage"),
                exit_code=item.get("exitCode"),
                started_at=item.get("startedAt"),
                stopped_at=item.get("stoppedAt"),
            )
            for index, item in enumerate(items_of(raw, "replica", "replicas", "items"))
            if isinstance(item, dict)
        ]

    def __str__(self) -> str:
        details = [
            *(["live"] if self.live else []),
            *(["updating"] if self.updating else []),
            *([f"exit code {self.exit_code}"] if self.exit_code is not None else []),
            *([f"started {self.started_at}"] if self.started_at else []),
            *([f"stopped {self.stopped_at}"] if self.stopped_at else []),
        ]
        return f"{self.id}: {self.stage}" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True)
class ComputeQuota:
    """
    How many accelerators of one type a namespace may hold at one vendor, and holds now.

    :param vendor: the cloud vendor.
    :param instance_type: e.g. ``nvidia-a10g``.
    :param architecture: human name of the hardware.
    :param max_accelerators: the quota.
    :param used_accelerators: held now.
    """

    vendor: str
    instance_type: str
    architecture: str
    max_accelerators: int
    used_accelerators: int

    @classmethod
    def list_from_raw(cls, raw: Any) -> list[ComputeQuota]:
        vendors = items_of(raw, "quotas", "vendors", "items")
        return [
            cls(
                vendor=vendor["name"],
                instance_type=quota["instanceType"],
                architecture=quota.get("architecture", ""),
                max_accelerators=quota["maxAccelerators"],
                used_accelerators=quota["usedAccelerators"],
            )
            for vendor in vendors
            for quota in vendor.get("quotas", [])
        ]


@dataclass(frozen=True)
class CatalogModel:
    """
    A model of Hugging Face's catalog, deployable in one call.

    :param repo_id: the model repository.
    :param task: the task it serves.
    :param license: its license.
    :param recipes: the ready configurations: ``{publicId, accelerator, engineType, ...}`` each.
    :param raw: the whole JSON object.
    """

    repo_id: str
    task: str | None
    license: str | None
    recipes: tuple[dict[str, Any], ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> CatalogModel:
        return cls(
            repo_id=raw["repoId"],
            task=raw.get("task"),
            license=raw.get("license"),
            recipes=tuple(raw.get("recipes") or ()),
            raw=raw,
        )
