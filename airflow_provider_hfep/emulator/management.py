"""
The emulated management API: ``/api/whoami-v2`` and ``/v2/...``.

It answers as the real service does: keys, enum strings, ``Z`` timestamps, error statuses and bodies.

Every route under a namespace shares one prologue, as FastAPI dependencies: the caller must hold a
token that may act in the namespace (:data:`Caller`), and a route about one endpoint gets it only if
it exists (:data:`Target`).
"""

from __future__ import annotations

import base64
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from airflow_provider_hfep.emulator import observability
from airflow_provider_hfep.emulator.scenario import Scenario
from airflow_provider_hfep.emulator.settings import User
from airflow_provider_hfep.emulator.state import Endpoint, World, capacity_message, deep_merge
from airflow_provider_hfep.emulator.validation import (
    ApiError,
    check_create_body,
    check_shared,
    validation_failed,
)

router = APIRouter()

HARDWARE = [
    # vendor, region, label, instance type, sizes with (price per hour), accelerator, architecture, gpu GB per accelerator
    (
        "aws",
        "us-east-1",
        "N. Virginia",
        "intel-spr",
        {"x1": 0.033, "x2": 0.067, "x4": 0.134, "x8": 0.268},
        "cpu",
        "Intel Sapphire Rapids",
        None,
    ),
    ("aws", "us-east-1", "N. Virginia", "nvidia-t4", {"x1": 0.5, "x4": 3.0}, "gpu", "NVIDIA T4", 16),
    ("aws", "us-east-1", "N. Virginia", "nvidia-l4", {"x1": 0.8, "x4": 3.8}, "gpu", "NVIDIA L4", 24),
    ("aws", "us-east-1", "N. Virginia", "nvidia-a10g", {"x1": 1.0, "x4": 5.0}, "gpu", "NVIDIA A10G", 24),
    (
        "aws",
        "us-east-1",
        "N. Virginia",
        "nvidia-a100",
        {"x1": 2.5, "x2": 5.0, "x4": 10.0, "x8": 20.0},
        "gpu",
        "NVIDIA A100",
        80,
    ),
    (
        "aws",
        "eu-west-1",
        "Ireland",
        "intel-spr",
        {"x1": 0.033, "x2": 0.067, "x4": 0.134},
        "cpu",
        "Intel Sapphire Rapids",
        None,
    ),
    ("aws", "eu-west-1", "Ireland", "nvidia-l4", {"x1": 0.8}, "gpu", "NVIDIA L4", 24),
    ("gcp", "us-east4", "Virginia", "nvidia-l4", {"x1": 0.7, "x4": 3.8}, "gpu", "NVIDIA L4", 24),
]


def the_world(request: Request) -> World:
    return request.app.state.world


def the_scenario(request: Request) -> Scenario:
    return request.app.state.scenario


TheWorld = Annotated[World, Depends(the_world)]
TheScenario = Annotated[Scenario, Depends(the_scenario)]


def bearer_user(request: Request, world: TheWorld) -> User | None:
    """Find the user whose token the request carries, if any."""
    header = request.headers.get("authorization", "")
    return world.user_for(header[7:].strip() if header.lower().startswith("bearer ") else None)


def authorized(namespace: str, request: Request, world: TheWorld) -> User:
    """Return the caller, if its token may act in ``namespace`` (one without billing refuses all)."""
    user = bearer_user(request, world)
    if user is None:
        raise ApiError(401, "Invalid credentials in Authorization header")
    if not user.may_act_in(namespace):
        raise ApiError(403, f"You don't have access to namespace {namespace}")
    if namespace in world.unbilled_namespaces:
        raise ApiError(401, f"Namespace {namespace} has no payment method")
    return user


Caller = Annotated[User, Depends(authorized)]


def existing_endpoint(namespace: str, name: str, caller: Caller, world: TheWorld) -> Endpoint:
    endpoint = world.get(namespace, name)
    if endpoint is None:
        raise ApiError(404, f"Endpoint {namespace}/{name} not found")
    return endpoint


Target = Annotated[Endpoint, Depends(existing_endpoint)]


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise ApiError(400, "Failed to parse the request body as JSON") from None


Body = Annotated[Any, Depends(json_body)]


def check_quota(
    world: World, namespace: str, config: dict[str, Any], endpoint: Endpoint | None = None
) -> None:
    """Refuse a deployment the namespace's quota cannot hold, as the service does (it counts accelerators)."""
    vendor, instance_type = config["provider"]["vendor"], config["compute"]["instanceType"]
    size = str(config["compute"]["instanceSize"])
    replicas = max(1, int(config["compute"]["scaling"].get("minReplica") or 0))
    need = (int(size[1:]) if size[1:].isdigit() else 1) * replicas
    used = world.used(namespace, vendor, instance_type, but=endpoint)
    limit = world.quota(namespace, vendor, instance_type)
    if used + need > limit:
        raise ApiError(
            400,
            f"Quota exceeded: {used} of {limit} {instance_type} accelerators in {vendor} are in use "
            f"and this needs {need}. Request a quota increase or pick other hardware",
        )


def check_available(world: World, config: dict[str, Any]) -> None:
    """Refuse a deployment on an instance type the region has none of now, in the service's words."""
    provider, compute = config["provider"], config["compute"]
    key = (provider["vendor"], provider["region"], compute["instanceType"])
    if world.availability_of(key) == "not_available":
        raise ApiError(400, capacity_message(compute, provider, "not_available"))


@router.get("/api/whoami-v2")
async def whoami(request: Request, world: TheWorld) -> dict[str, Any]:
    user = bearer_user(request, world)
    if user is None:
        raise ApiError(401, "Invalid user token")
    return {
        "type": "user",
        "id": user.name,
        "name": user.name,
        "fullname": user.name,
        "orgs": [{"type": "org", "name": org, "fullname": org} for org in user.orgs],
        "auth": {"type": "access_token", "accessToken": {"displayName": "hfep-emulator", "role": "write"}},
    }


def _cursor(direction: str, name: str) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{name}".encode()).decode()


def _read_cursor(cursor: str) -> tuple[str, str]:
    try:
        direction, _, name = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid cursor") from None
    if direction not in ("after", "before"):
        raise ApiError(400, "Invalid cursor")
    return direction, name


@router.get("/v2/endpoint/{namespace}")
async def list_endpoints(
    namespace: str,
    caller: Caller,
    world: TheWorld,
    limit: int | None = None,
    cursor: str | None = None,
    tags: str | None = None,
    search: str | None = None,
) -> dict[str, Any]:
    """
    One page of a namespace's endpoints, in name order.

    Cursors name the endpoint a page ends (or starts) at, not a position: a page read after endpoints
    were added or deleted neither repeats nor skips the ones that stayed.
    """
    size = world.settings.page_size if limit is None else limit
    if size < 1:
        raise ApiError(400, "limit must be at least 1")
    wanted_tags = {t for t in (tags or "").split(",") if t}
    matching = [
        e
        for e in world.in_namespace(namespace)
        if (not search or search in e.name) and wanted_tags <= set(e.config.get("tags") or [])
    ]
    if cursor:
        direction, edge = _read_cursor(cursor)
        if direction == "after":
            page = [e for e in matching if e.name > edge][:size]
        else:
            page = [e for e in matching if e.name < edge][-size:]
    else:
        page = matching[:size]
    answer: dict[str, Any] = {"items": [world.to_json(e) for e in page]}
    if page and any(e.name > page[-1].name for e in matching):
        answer["nextCursor"] = _cursor("after", page[-1].name)
    if page and any(e.name < page[0].name for e in matching):
        answer["prevCursor"] = _cursor("before", page[0].name)
    return answer


@router.post("/v2/endpoint/{namespace}")
async def create_endpoint(
    namespace: str, caller: Caller, body: Body, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    check_create_body(body)
    if world.get(namespace, body["name"]) is not None:
        raise ApiError(409, "Endpoint name already exists")
    check_quota(world, namespace, body)
    check_available(world, body)
    endpoint = world.create(namespace, body, caller.name)
    scenario.fire("create", endpoint)
    return world.to_json(endpoint)


@router.get("/v2/endpoint/{namespace}/{name}")
async def get_endpoint(endpoint: Target, world: TheWorld, scenario: TheScenario) -> dict[str, Any]:
    answer = world.to_json(endpoint)  # a rule on "get" changes what the next read sees, not this one
    scenario.fire("get", endpoint)
    return answer


@router.put("/v2/endpoint/{namespace}/{name}")
async def update_endpoint(
    endpoint: Target, body: Body, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "Failed to parse the request body as JSON: expected an object")
    check_shared(body)
    for fixed in ("type", "provider", "name"):
        if fixed in body and body[fixed] != endpoint.config.get(fixed):
            raise validation_failed(fixed, "cannot be changed by an update")
    merged_scaling = {
        **endpoint.config["compute"]["scaling"],
        **(body.get("compute") or {}).get("scaling", {}),
    }
    check_shared({"compute": {"scaling": merged_scaling}})
    if endpoint.holds_hardware and ("compute" in body or "provider" in body):
        merged = deep_merge(endpoint.config, body)
        check_quota(world, endpoint.namespace, merged, endpoint)
        check_available(world, merged)
    answer = world.to_json(endpoint)  # answered from the state before the update is applied
    world.update(endpoint, body)
    answer.update({k: v for k, v in world.to_json(endpoint).items() if k != "status"})
    scenario.fire("update", endpoint)
    return answer


@router.delete("/v2/endpoint/{namespace}/{name}")
async def delete_endpoint(endpoint: Target, world: TheWorld, scenario: TheScenario) -> dict[str, Any]:
    world.delete(endpoint)
    scenario.fire("delete", endpoint)
    return {}  # the contract's Empty


@router.get("/v2/provider/{namespace}")
async def hardware(namespace: str, caller: Caller, world: TheWorld) -> dict[str, Any]:
    vendors: dict[str, dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for vendor, region, label, instance_type, sizes, accelerator, architecture, gpu_gb in HARDWARE:
        computes = vendors.setdefault(vendor, {}).setdefault((region, label), [])
        for size, price in sizes.items():
            count = int(size[1:])
            computes.append(
                {
                    "id": f"{vendor}-{region}-{instance_type}-{size}",
                    "accelerator": accelerator,
                    "numAccelerators": count,
                    "numCpus": 4 * count,
                    "memoryGb": 16.0 * count,
                    "instanceType": instance_type,
                    "instanceSize": size,
                    "architecture": architecture,
                    "status": world.availability_of((vendor, region, instance_type)),
                    "pricePerHour": price,
                    **({} if gpu_gb is None else {"gpuMemoryGb": gpu_gb}),  # per accelerator
                    "quota": {
                        "maxAccelerators": world.quota(namespace, vendor, instance_type),
                        "usedAccelerators": world.used(namespace, vendor, instance_type),
                    },
                }
            )
    return {
        "vendors": [
            {
                "name": vendor,
                "status": "available",
                "regions": [
                    {"name": region, "label": label, "status": "available", "computes": computes}
                    for (region, label), computes in regions.items()
                ],
            }
            for vendor, regions in vendors.items()
        ]
    }


@router.get("/v2/provider/quotas/{namespace}")
async def quotas(namespace: str, caller: Caller, world: TheWorld) -> dict[str, Any]:
    """List, per vendor, each instance type's accelerators: the quota and what the namespace holds."""
    vendors: dict[str, dict[str, str]] = {}
    for vendor, _, _, instance_type, _, _, architecture, _ in HARDWARE:
        vendors.setdefault(vendor, {})[instance_type] = architecture
    return {
        "vendors": [
            {
                "name": vendor,
                "quotas": [
                    {
                        "architecture": architecture,
                        "instanceType": instance_type,
                        "maxAccelerators": world.quota(namespace, vendor, instance_type),
                        "usedAccelerators": world.used(namespace, vendor, instance_type),
                    }
                    for instance_type, architecture in types.items()
                ],
            }
            for vendor, types in vendors.items()
        ]
    }


@router.get("/v2/endpoint/{namespace}/{name}/logs")
async def logs_v2(
    endpoint: Target, tail: int | None = None, replica: str | None = None, line_max_length: int | None = None
) -> PlainTextResponse:
    """Answer the log as text, one ``<timestamp> <LEVEL> <replica> <message>`` line each, the last ``tail``."""
    records = [r for r in observability.log_records(endpoint) if replica is None or r["replica"] == replica]
    lines = [f"{r['timestamp']} {r['level'].upper()} {r['replica'] or '-'} {r['message']}" for r in records]
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    if line_max_length:
        lines = [line[:line_max_length] for line in lines]
    return PlainTextResponse("".join(f"{line}\n" for line in lines))


@router.get("/v3/endpoint/{namespace}/{name}/logs")
async def logs_v3(
    endpoint: Target,
    world: TheWorld,
    replica: str | None = None,
    level: str | None = None,
    search: str | None = None,
    since: str | None = None,
    until: str | None = None,
    tail: int | None = None,
    limit: int = 1000,
) -> dict[str, Any]:
    """Answer the log as structured records, filtered; 501 where the service offers no log search."""
    if not world.logs_v3:
        raise ApiError(501, "Log search is not available for this endpoint")
    if not 1 <= limit <= 5000:
        raise ApiError(400, "limit must be between 1 and 5000")
    records = [
        r
        for r in observability.log_records(endpoint)
        if (replica is None or r["replica"] == replica)
        and (level is None or r["level"] == level.lower())
        and (search is None or search.lower() in r["message"].lower())
        and (since is None or r["timestamp"] >= since)
        and (until is None or r["timestamp"] <= until)
    ]
    if tail is not None:
        records = records[-tail:] if tail > 0 else []
    return {"logs": records[:limit]}


@router.get("/v2/endpoint/{namespace}/{name}/replica")
async def replicas(endpoint: Target) -> dict[str, Any]:
    return {"replicas": observability.replica_states(endpoint)}


_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
#: points one metrics answer holds at most
MAX_POINTS = 10_000


def parse_step(value: Any) -> int:
    """Read a metrics ``step``: seconds, or a duration string (``"60s"``, ``"1m"``, ``"1h"``); default 60 s."""
    if value is None:
        return 60
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _DURATION.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        raise ApiError(422, "VALIDATION_FAILED: step: a duration, in seconds or as '60s', '1m' or '1h'")
    return int(match[1]) * _UNIT_SECONDS[match[2]]


def metrics_window(body: Any) -> tuple[int, int, int]:
    """Check a MetricsParams body (``dnsPrefix``, ``from`` and ``to`` required) and return from, to, step."""
    if not isinstance(body, dict) or not isinstance(body.get("dnsPrefix"), str) or not body["dnsPrefix"]:
        raise validation_failed("dnsPrefix", "`dnsPrefix` is a required string")
    if not all(isinstance(body.get(k), int) and not isinstance(body[k], bool) for k in ("from", "to")):
        raise validation_failed("from", "`from` and `to` are required integers (epoch seconds)")
    start, end, step = body["from"], body["to"], parse_step(body.get("step"))
    if end < start:
        raise validation_failed("to", "`to` is before `from`")
    if (end - start) // step > MAX_POINTS:
        raise validation_failed(
            "step", f"more than {MAX_POINTS} points: use a larger step or a shorter window"
        )
    return start, end, step


@router.post("/v2/endpoint/{namespace}/{name}/metrics/{metric:path}")
async def metrics(endpoint: Target, metric: str, body: Body) -> dict[str, Any]:
    if metric not in observability.METRICS:
        raise ApiError(404, f"Unknown metric {metric}")
    start, end, step = metrics_window(body)
    return observability.metric_series(endpoint, metric, start, end, step)


@router.post("/v2/endpoint/{namespace}/{name}/metrics")
async def all_metrics(endpoint: Target, body: Body) -> dict[str, Any]:
    start, end, step = metrics_window(body)
    return {
        "graphs": [
            observability.metric_series(endpoint, metric, start, end, step)
            for metric in observability.METRICS
        ]
    }


@router.post("/v2/endpoint/{namespace}/{name}/{action}")
async def endpoint_action(  # last: the routes above take their own paths first
    action: str, endpoint: Target, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    if action == "pause":
        world.pause(endpoint)
    elif action == "scale-to-zero":
        if endpoint.state == "paused":
            raise ApiError(400, "Bad Request: Invalid state: endpoint is paused, resume it first")
        world.scale_to_zero(endpoint)
    elif action == "resume":
        if endpoint.state == "running":
            raise ApiError(400, "Bad Request: Endpoint is already running")
        if not endpoint.holds_hardware:
            check_quota(world, endpoint.namespace, endpoint.config, endpoint)
        check_available(world, endpoint.config)
        world.resume(endpoint)
    else:
        raise ApiError(404, f"Unknown action {action}")
    scenario.fire(action, endpoint)
    return world.to_json(endpoint)
