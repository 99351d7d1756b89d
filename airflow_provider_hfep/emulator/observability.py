"""
What the emulated service lets a user see of an endpoint: its logs, its replicas, its metrics.

All of it is derived from the endpoint's state history, deterministically: the same story gives the
same lines. A deployment forced into ``failed`` tells it the way a crashed container does: the
service's message as an error line, the exit code, and a replica that stopped with that code.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.emulator.state import exit_code, zulu

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator.state import Endpoint


def log_records(endpoint: Endpoint) -> list[dict[str, Any]]:
    """Tell the endpoint's log, oldest first: ``{timestamp, level, message, replica}`` per line."""
    image: Any = next(iter((endpoint.config["model"].get("image") or {"huggingface": {}}).values()), {})
    image_url = image.get("url") if isinstance(image, dict) else None
    compute, provider = endpoint.config["compute"], endpoint.config["provider"]
    records: list[dict[str, Any]] = []
    replica = endpoint.replica_log[0].id if endpoint.replica_log else None

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
        if state == "pending" and "capacity" in message:
            line(at, "warning", message)
        elif state == "pending":
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
            line(at, "error", f"Container exited with code {exit_code(message)}")
        elif state == "paused":
            line(at, "info", "Paused: replicas stopped")
        elif state == "scaledToZero":
            line(at, "info", "Scaled to zero: replicas stopped until the next request")
    return records


def replica_states(endpoint: Endpoint) -> list[dict[str, Any]]:
    """
    Give each replica's status (``ReplicaStatus``: live, updating, stage, exitCode, startedAt, stoppedAt).

    The replicas that run, and those that stopped (the newest hundred), with their start and stop
    times: what a client needs to count what an endpoint ran.
    """
    state = endpoint.state
    replicas: list[dict[str, Any]] = []
    for record in endpoint.replica_log:
        status: dict[str, Any] = {"id": record.id, "startedAt": zulu(record.started)}
        if record.stopped is None:
            status.update(
                live=state in ("running", "updating"),
                updating=state == "updating",
                stage="starting" if state == "initializing" else "running",
            )
        else:
            status.update(
                live=False,
                updating=False,
                stage="failed" if record.exit_code is not None else "stopped",
                stoppedAt=zulu(record.stopped),
            )
            if record.exit_code is not None:
                status["exitCode"] = record.exit_code
        replicas.append(status)
    if endpoint.waiting_for_capacity and state == "pending":  # asked for, never started: no startedAt
        digest = hashlib.sha1(f"{endpoint.namespace}/{endpoint.name}".encode()).hexdigest()[:5]
        replicas.append(
            {
                "id": f"{endpoint.name}-{digest}-{endpoint.replica_serial + 1}",
                "live": False,
                "updating": False,
                "stage": "pending",
            }
        )
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
        if metric == "replica-running":  # from the replicas' lives: the series tells the past too
            value: float = sum(
                1
                for r in endpoint.replica_log
                if r.started <= at < (r.stopped if r.stopped is not None else at + 1)
            )
        elif metric == "pending-request":
            value = seed % 8 if running else 0
        elif metric == "response-elapsed":
            value = round(20 + (seed % 400) / 10, 1) if running else 0  # milliseconds
        else:
            value = seed % 100 if running else 0
        points.append({"timestamp": at, "value": value})
    return {"metric": metric, "step": step, "series": points}
