"""
The emulated management API: ``/api/whoami-v2`` and ``/v2/...``.

It answers as the real service does: keys, enum strings, ``Z`` timestamps, error statuses and bodies.

Every route under a namespace shares one prologue, as FastAPI dependencies: the caller must hold a
token that may act in the namespace (:data:`Caller`), and a route about one endpoint gets it only if
it exists (:data:`Target`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from airflow_provider_hfep.emulator.scenario import Scenario
from airflow_provider_hfep.emulator.state import Endpoint, User, World
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


@router.get("/v2/endpoint/{namespace}")
async def list_endpoints(namespace: str, caller: Caller, world: TheWorld) -> dict[str, Any]:
    return {"items": [world.to_json(e) for e in world.in_namespace(namespace)]}


@router.post("/v2/endpoint/{namespace}")
async def create_endpoint(
    namespace: str, caller: Caller, body: Body, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    check_create_body(body)
    if world.get(namespace, body["name"]) is not None:
        raise ApiError(409, "Endpoint name already exists")
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
    answer = world.to_json(endpoint)  # answered from the state before the update is applied
    world.update(endpoint, body)
    answer.update({k: v for k, v in world.to_json(endpoint).items() if k != "status"})
    scenario.fire("update", endpoint)
    return answer


@router.delete("/v2/endpoint/{namespace}/{name}")
async def delete_endpoint(endpoint: Target, world: TheWorld, scenario: TheScenario) -> Response:
    world.delete(endpoint)
    scenario.fire("delete", endpoint)
    return Response(status_code=200)


@router.post("/v2/endpoint/{namespace}/{name}/{action}")
async def endpoint_action(
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
        world.resume(endpoint)
    else:
        raise ApiError(404, f"Unknown action {action}")
    scenario.fire(action, endpoint)
    return world.to_json(endpoint)


@router.get("/v2/provider/{namespace}")
async def hardware(caller: Caller) -> dict[str, Any]:
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
                    "gpuMemoryGb": None if gpu_gb is None else gpu_gb * count,
                    "instanceType": instance_type,
                    "instanceSize": size,
                    "architecture": architecture,
                    "status": "available",
                    "pricePerHour": price,
                    "quota": {"maxAccelerators": 16, "usedAccelerators": 0},
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
