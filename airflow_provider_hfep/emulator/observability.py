"""
What the emulated service lets a user see of an endpoint: its logs, its replicas, its metrics.

All of it is derived from the endpoint's state history, deterministically: the same story gives the
same lines. A deployment forced into ``failed`` tells it the way a crashed container does: the
service's message as an error line, the exit code, and a replica that stopped with that code.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.emulator.state import zulu

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator.state import Endpoint


def replica_ids(endpoint: Endpoint) -> list[str]:
    """Name the replicas stably, as the service shows them (``<name>-<hash>-<n>``)."""
    digest = hashlib.sha1(f"{endpoint.namespace}/{endpoint.name}".encode()).hexdigest()[:5]
    return [f"{endpoint.name}-{digest}-{index}" for index in range(endpoint.replicas)]


def _exit_code(message: str) -> int:
    """137 (killed) for memory trouble, as a container killed by the kernel reports; 1 otherwise."""
    lowered = message.lower()
    return 137 if "memory" in lowered or "oom" in lowered else 1


def log_records(endpoint: Endpoint) -> list[dict[str, Any]]:
    """Tell the endpoint's log, oldest first: ``{timestamp, level, message, replica}`` per line."""
    image: Any = next(iter((endpoint.config["model"].get("image") or {"huggingface": {}}).values()), {})
    image_url = image.get("url") if isinstance(image, dict) else None
    compute, provider = endpoint.config["compute"], endpoint.config["provider"]
    records: list[dict[str, Any]] = []
    replica = replica_ids(endpoint)[0] if endpoint.replicas else None

    def line(at: float, level: str, text: str) -> None:
        records.append({"timestamp": zulu(at), "level": level, "message": text, "replica": replica})

    def starting(at: float) -> None:
        line(at, "info", f"Pulling image {image_url or 'huggingface/inference-toolkit'}")
        line(at, "info", f"Downloading model {endpoint.config['model']['repository']}")
        model = endpoint.config["model"]
        environment = {**(model.get("env") or {}), **(model.get("secrets") or {})}
        for key, value in sorted(environment.items()):
            line(at, "info", f"env {key}={value}")  # containers print their environment, secrets too

    started = False
    for at, state, message in endpoint.history:
        if state == "pending":
            line(
                at,
                "info",
                f"Scheduling on {compute['instanceType']} {compute['instanceSize']} in {provider['vendor']}/{provider['region']}",
            )
        elif state == "initializing":
            starting(at)
            started = True
        elif state == "running":
            line(
                at,
                "info",
                f"Model loaded, listening on port {image.get('port', 80) if isinstance(image, dict) else 80}",
            )
            line(at, "info", f"Health route {endpoint.health_route} answers 200")
        elif state == "updating":
            line(at, "info", "Applying the update: starting new replicas")
        elif state in ("failed", "updateFailed"):
            if not started:  # forced straight from pending: the container still started, then crashed
                starting(at)
                started = True
            line(at, "error", message)
            line(at, "error", f"Container exited with code {_exit_code(message)}")
        elif state == "paused":
            line(at, "info", "Paused: replicas stopped")
        elif state == "scaledToZero":
            line(at, "info", "Scaled to zero: replicas stopped until the next request")
    return records


def replica_states(endpoint: Endpoint) -> list[dict[str, Any]]:
    """Give each replica's status (``ReplicaStatus``: live, updating, stage, exitCode, startedAt, stoppedAt)."""
    state = endpoint.state
    if state in ("paused", "scaledToZero", "pending"):
        return []
    started = zulu(endpoint.history[-1][0]) if endpoint.history else zulu(endpoint.updated_at)
    replicas = []
    for replica in replica_ids(endpoint):
        status: dict[str, Any] = {
            "id": replica,
            "live": state in ("running", "updating"),
            "updating": state == "updating",
            "stage": {"initializing": "starting", "failed": "failed", "updateFailed": "failed"}.get(
                state, "running"
            ),
            "startedAt": started,
        }
        if state in ("failed", "updateFailed"):
            status["exitCode"] = _exit_code(endpoint.message)
            status["stoppedAt"] = zulu(endpoint.updated_at)
        replicas.append(status)
    return replicas


METRICS = (
    "hardware-cpu",
    "replica-running",
    "replica-status",
    "response-status-code",
    "response-elapsed",
    "pending-request",
    "vllm/requests",
    "vllm/prefix-cache",
)


def metric_series(endpoint: Endpoint, metric: str, start: int, end: int, step: int) -> dict[str, Any]:
    """Make a deterministic series of ``metric`` over ``[start, end]`` (epoch s), one point a ``step``."""
    running = endpoint.state in ("running", "updating")
    points = []
    for at in range(start, end + 1, max(1, step)):
        seed = int(hashlib.sha1(f"{endpoint.name}/{metric}/{at}".encode()).hexdigest()[:6], 16)
        if metric == "replica-running":
            value: float = endpoint.replicas if running else 0
        elif metric == "pending-request":
            value = seed % 8 if running else 0
        elif metric == "response-elapsed":
            value = round(20 + (seed % 400) / 10, 1) if running else 0  # milliseconds
        else:
            value = seed % 100 if running else 0
        points.append({"timestamp": at, "value": value})
    return {"metric": metric, "step": step, "series": points}
