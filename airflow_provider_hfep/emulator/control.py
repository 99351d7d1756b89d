"""
The control API under ``/_emulator``, for tests and demos.

Reset the cloud, seed endpoints, force states, script turns of events, inject faults, and read the
request log and the billing meters.

Not part of the emulated service: its requests are not logged, and it takes no Hugging Face token.
When the emulator has a control token (always when it listens beyond loopback), every route here
requires it in the ``X-Emulator-Control-Token`` header: the log holds what clients sent.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from airflow_provider_hfep.emulator.faults import Fault, FaultPlan
from airflow_provider_hfep.emulator.gate import RequestLog
from airflow_provider_hfep.emulator.management import TheScenario, TheWorld
from airflow_provider_hfep.emulator.scenario import AvailabilityChange, Rule
from airflow_provider_hfep.emulator.state import STATES, Endpoint
from airflow_provider_hfep.emulator.validation import ApiError, check_create_body


def control_token_given(request: Request) -> None:
    """Refuse (401) a control request without the emulator's control token, when it has one."""
    expected = request.app.state.control_token
    given = request.headers.get("x-emulator-control-token", "")
    if expected and not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "the emulator's control API needs its token (header X-Emulator-Control-Token)")


router = APIRouter(prefix="/_emulator", dependencies=[Depends(control_token_given)])


def the_faults(request: Request) -> FaultPlan:
    return request.app.state.faults


def the_request_log(request: Request) -> RequestLog:
    return request.app.state.request_log


TheFaults = Annotated[FaultPlan, Depends(the_faults)]
TheRequestLog = Annotated[RequestLog, Depends(the_request_log)]


def any_endpoint(namespace: str, name: str, world: TheWorld) -> Endpoint:
    endpoint = world.get(namespace, name)
    if endpoint is None:
        raise ApiError(404, f"Endpoint {namespace}/{name} not found")
    return endpoint


AnyEndpoint = Annotated[Endpoint, Depends(any_endpoint)]


async def json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object")
    return body


JsonObject = Annotated[dict[str, Any], Depends(json_object)]


@router.post("/reset")
async def reset(
    world: TheWorld, faults: TheFaults, log: TheRequestLog, scenario: TheScenario
) -> dict[str, Any]:
    world.reset()
    log.clear()
    faults.replace([], faults.seed)
    scenario.rules.clear()
    return {"reset": True}


@router.get("/config")
async def config(world: TheWorld, faults: TheFaults) -> dict[str, Any]:
    """Tell the settings (user names without their tokens), the faults and their seed."""
    settings = {
        f.name: getattr(world.settings, f.name)
        for f in dataclasses.fields(world.settings)
        if f.name not in ("quotas", "availability")
    }
    settings["availability"] = {":".join(key): status for key, status in world.availability.items()}
    settings["users"] = [{"name": u.name, "orgs": list(u.orgs)} for u in world.settings.users]
    return {**settings, "faults": [f.to_json() for f in faults.faults], "seed": faults.seed}


@router.get("/requests")
async def requests(log: TheRequestLog, scope: str | None = None, since: int = 0) -> dict[str, Any]:
    return {"requests": [e for e in log if e["id"] > since and (scope is None or e["scope"] == scope)]}


@router.delete("/requests")
async def clear_requests(log: TheRequestLog) -> dict[str, Any]:
    log.clear()
    return {"cleared": True}


@router.get("/faults")
async def get_faults(faults: TheFaults) -> dict[str, Any]:
    return {"faults": [f.to_json() for f in faults.faults], "seed": faults.seed}


@router.put("/faults")
async def put_faults(body: JsonObject, faults: TheFaults) -> dict[str, Any]:
    try:
        new = [Fault(**{k: v for k, v in item.items() if k != "hits"}) for item in body.get("faults", [])]
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    faults.replace(new, body.get("seed", faults.seed))
    return {"faults": [f.to_json() for f in faults.faults], "seed": faults.seed}


@router.get("/rules")
async def get_rules(scenario: TheScenario) -> dict[str, Any]:
    return {"rules": [rule.to_json() for rule in scenario.rules]}


@router.put("/rules")
async def put_rules(body: JsonObject, scenario: TheScenario) -> dict[str, Any]:
    try:
        rules = [
            Rule(**{k: v for k, v in item.items() if k not in ("seen", "fired")})
            for item in body.get("rules", [])
        ]
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    scenario.rules[:] = rules
    return {"rules": [rule.to_json() for rule in scenario.rules]}


@router.post("/rules")
async def add_rule(body: JsonObject, scenario: TheScenario) -> dict[str, Any]:
    """Add one rule, leaving the others (and how often they fired) as they are."""
    try:
        rule = Rule(**{k: v for k, v in body.items() if k not in ("seen", "fired")})
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    scenario.rules.append(rule)
    return rule.to_json()


@router.post("/endpoints/{namespace}")
async def seed_endpoint(namespace: str, body: JsonObject, world: TheWorld) -> dict[str, Any]:
    state = body.pop("state", "running")
    owner = body.pop("owner", namespace)
    check_create_body(body)
    if state not in STATES:
        raise ApiError(400, f"unknown state {state!r}")
    if world.get(namespace, body["name"]) is not None:
        raise ApiError(409, "Endpoint name already exists")
    return world.to_json(world.create(namespace, body, owner, state))


@router.post("/endpoints/{namespace}/{name}/state")
async def force_state(endpoint: AnyEndpoint, body: JsonObject, world: TheWorld) -> dict[str, Any]:
    if body.get("state") not in STATES:
        raise ApiError(400, f"unknown state {body.get('state')!r}; use one of {', '.join(sorted(STATES))}")
    world.force(endpoint, body["state"], body.get("message"))
    return world.to_json(endpoint)


@router.get("/billing")
async def billing(world: TheWorld) -> dict[str, Any]:
    meters = {f"{ns}/{name}": world.meter(ns, name) for ns, name in [*world.endpoints, *world.deleted_meters]}
    return {key: vars(meter) for key, meter in meters.items() if meter is not None}


@router.get("/endpoints/{namespace}/{name}/billing")
async def endpoint_billing(namespace: str, name: str, world: TheWorld) -> dict[str, Any]:
    meter = world.meter(namespace, name)
    if meter is None:
        raise ApiError(404, f"Endpoint {namespace}/{name} not found")
    return vars(meter)


@router.get("/endpoints/{namespace}/{name}/load")
async def endpoint_load(namespace: str, name: str, world: TheWorld) -> dict[str, Any]:
    """Tell the requests in flight on the endpoint's data plane now, and how many it takes before a 429."""
    endpoint = world.get(namespace, name)
    if endpoint is None:
        raise ApiError(404, f"Endpoint {namespace}/{name} not found")
    return {
        "in_flight": endpoint.in_flight,
        "capacity": world.settings.capacity * max(1, endpoint.replicas),
        "replicas": endpoint.replicas,
    }


@router.put("/namespaces/{namespace}")
async def namespace_settings(namespace: str, body: JsonObject, world: TheWorld) -> dict[str, Any]:
    if body.get("billing", True):
        world.unbilled_namespaces.discard(namespace)
    else:
        world.unbilled_namespaces.add(namespace)
    return {"namespace": namespace, "billing": namespace not in world.unbilled_namespaces}


@router.put("/quotas/{namespace}")
async def set_quota(namespace: str, body: JsonObject, world: TheWorld) -> dict[str, Any]:
    """Set how many accelerators of one type the namespace may hold (``vendor``, ``instanceType``, ``max``)."""
    vendor, instance_type, maximum = body.get("vendor"), body.get("instanceType"), body.get("max")
    if not isinstance(vendor, str) or not isinstance(instance_type, str) or not isinstance(maximum, int):
        raise ApiError(400, "expected {vendor: str, instanceType: str, max: int}")
    world.quotas[(namespace, vendor, instance_type)] = maximum
    return {"namespace": namespace, "vendor": vendor, "instanceType": instance_type, "max": maximum}


@router.put("/logs")
async def set_logs(body: JsonObject, world: TheWorld) -> dict[str, Any]:
    """Offer the v3 (searchable) logs or not (they then answer 501, as where the service lacks them)."""
    world.logs_v3 = bool(body.get("v3", True))
    return {"v3": world.logs_v3}


@router.put("/availability")
async def set_availability(body: JsonObject, world: TheWorld) -> dict[str, Any]:
    """
    Change how much of an instance type a region has, now or ``in_seconds`` from now.

    The body is ``{vendor, region, instanceType, status, in_seconds?}``, status ``available``,
    ``low_availability`` or ``not_available``: what the hardware listing then says, and how a
    deployment there goes.
    """
    try:
        change = AvailabilityChange(**body)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, str(exc)) from None
    change.apply(world)
    return change.to_json()
