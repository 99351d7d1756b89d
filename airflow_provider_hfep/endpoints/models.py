"""The endpoint as the API describes it: one dataclass, its enums, and the hardware listing."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


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
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], namespace: str) -> InferenceEndpoint:
        """Build from the API's JSON. ``namespace`` is the one it was read under."""
        status = raw["status"]
        model = raw["model"]
        return cls(
            name=raw["name"],
            namespace=namespace,
            repository=model["repository"],
            status=_status(status["state"]),
            url=status.get("url"),
            framework=model["framework"],
            revision=model.get("revision"),
            task=model.get("task"),
            type=raw["type"],
            health_route=raw.get("healthRoute") or "/health",
            message=status.get("message") or "",
            created_at=parse_timestamp(status["createdAt"]),
            updated_at=parse_timestamp(status["updatedAt"]),
            raw=raw,
        )

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
    :param gpu_memory_gb: total GPU memory per replica, ``None`` on CPU.
    :param price_per_hour: USD per replica-hour.
    :param status: ``available``, ``low_availability``, ``not_available``, ``reserved``, ``deprecated``.
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

    @classmethod
    def list_from_raw(cls, raw: dict[str, Any]) -> list[HardwareOption]:
        """Flatten the vendors -> regions -> computes tree."""
        return [
            cls(
                vendor=vendor["name"],
                region=region["name"],
                id=compute["id"],
                accelerator=compute["accelerator"],
                instance_type=compute["instanceType"],
                instance_size=compute["instanceSize"],
                architecture=compute["architecture"],
                num_accelerators=compute["numAccelerators"],
                memory_gb=compute["memoryGb"],
                gpu_memory_gb=compute.get("gpuMemoryGb"),
                price_per_hour=compute["pricePerHour"],
                status=compute["status"],
            )
            for vendor in raw.get("vendors", [])
            for region in vendor.get("regions", [])
            for compute in region.get("computes", [])
        ]
