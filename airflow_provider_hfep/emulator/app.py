"""
The emulator's HTTP surface: the management API, each endpoint's data plane, and a control API.

Layout of URLs on one server:

- ``/api/whoami-v2`` and ``/v2/...``: the management API, answering as the real service does
  (keys, enum strings, ``Z`` timestamps, error statuses and bodies).
- ``/endpoints/{namespace}/{name}/...``: the data plane of each endpoint (its ``status.url``).
- ``/_emulator/...``: control for tests: reset, force a state, faults, request log, billing.

An outer ASGI layer (:class:`Gate`) logs every request and injects faults before FastAPI sees it,
so a ``reset`` fault can abort the TCP connection for real.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.faults import Fault, FaultPlan
from airflow_provider_hfep.emulator.state import STATES, Settings, User, World

NAME_RULE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
ENDPOINT_TYPES = ("public", "authenticated", "private")
ACCELERATORS = ("cpu", "gpu", "neuron")
IMAGE_VARIANTS = (
    "custom",
    "huggingface",
    "huggingfaceNeuron",
    "llamacpp",
    "tei",
    "tgi",
    "tgiNeuron",
    "vLLM",
    "vLLMNeuron",
    "sGLang",
    "hfServe",
)
DATA_PLANE = re.compile(r"^/endpoints/(?P<namespace>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
FAULT_HOLD_SECONDS = 60.0
_NOT_JSON = object()
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


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_failed(path: str, reason: str) -> JSONResponse:
    return api_error(400, f"VALIDATION_FAILED: {path}: {reason}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_create_body(body: Any) -> JSONResponse | None:
    """The server-side checks of a create body; ``None`` when it is acceptable."""
    if not isinstance(body, dict):
        return api_error(400, "Failed to parse the request body as JSON: expected an object")
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RULE.match(name):
        return validation_failed(
            "name",
            "must only contain lowercase alphanumeric characters or '-' and have a length of 32 characters maximum",
        )
    if body.get("type") not in ENDPOINT_TYPES:
        return validation_failed(
            "type", f"unknown variant `{body.get('type')}`, expected one of {', '.join(ENDPOINT_TYPES)}"
        )
    for section, keys in (
        ("provider", ("vendor", "region")),
        ("compute", ("accelerator", "instanceType", "instanceSize")),
        ("model", ("repository", "framework")),
    ):
        part = body.get(section)
        if not isinstance(part, dict):
            return validation_failed(section, "missing field")
        for key in keys:
            if not isinstance(part.get(key), str) or not part[key]:
                return validation_failed(f"{section}.{key}", "missing field")
    if not isinstance(body["compute"].get("scaling"), dict):
        return validation_failed("compute.scaling", "missing field")
    if "task" in body["model"] and not isinstance(body["model"]["task"], str):
        return api_error(400, "Failed to parse the request body as JSON: model.task: expected value")
    if "image" not in body["model"]:
        return validation_failed("model.image", "missing field")
    return check_shared(body)


def check_shared(body: dict[str, Any]) -> JSONResponse | None:
    """Checks that apply to a create body and to a (partial) update body."""
    compute = body.get("compute") or {}
    if "accelerator" in compute and compute["accelerator"] not in ACCELERATORS:
        return validation_failed("compute.accelerator", f"unknown variant `{compute['accelerator']}`")
    scaling = compute.get("scaling") or {}
    lo, hi = scaling.get("minReplica"), scaling.get("maxReplica")
    for key, value in (("minReplica", lo), ("maxReplica", hi)):
        if key in scaling and (not _is_int(value) or value < 0):
            return validation_failed(f"compute.scaling.{key}", "expected a non-negative integer")
    if _is_int(hi) and hi < 1:
        return validation_failed("compute.scaling.maxReplica", "must be at least 1")
    if _is_int(lo) and _is_int(hi) and lo > hi:
        return validation_failed("compute.scaling.minReplica", "must not exceed maxReplica")
    model = body.get("model") or {}
    image = model.get("image")
    if image is not None:
        if not isinstance(image, dict) or len(image) != 1 or next(iter(image)) not in IMAGE_VARIANTS:
            return validation_failed("model.image", f"expected exactly one of {', '.join(IMAGE_VARIANTS)}")
        variant, config = next(iter(image.items()))
        if variant != "huggingface" and not (isinstance(config, dict) and config.get("url")):
            return validation_failed(f"model.image.{variant}", "missing field `url`")
    path = (body.get("route") or {}).get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        return validation_failed("route.path", "must start with '/'")
    return None


async def serve_data_plane(
    world: World, method: str, path: str, headers: dict[str, str], payload: Any, arrived: float
) -> Response:
    """
    One request to an endpoint's data plane (its ``status.url``), answered like the real proxy.

    Served straight from :class:`Gate`, outside FastAPI: the benchmarks push hundreds of requests a
    second through here, and the emulator must not be what limits them.
    """
    settings = world.settings
    match = DATA_PLANE.match(path)
    endpoint = None if match is None else world.get(match["namespace"], match["name"])
    if endpoint is None or endpoint.url is None and endpoint.state != "paused":
        return PlainTextResponse("Not Found", 404)
    if endpoint.config["type"] != "public":
        authorization = headers.get("authorization", "")
        user = world.user_for(
            authorization[7:].strip() if authorization.lower().startswith("bearer ") else None
        )
        if user is None:
            return JSONResponse(
                {"error": "Authorization header is correct, but the token seems invalid"}, 401
            )
        if endpoint.config["type"] == "private" and not user.may_act_in(endpoint.namespace):
            return JSONResponse(
                {"error": "Forbidden: this private endpoint belongs to another organisation"}, 403
            )
    rest = match["rest"] or "/"
    if endpoint.state == "paused":
        return PlainTextResponse("Bad Gateway", 502)
    if method == "GET":
        if rest == endpoint.health_route or rest in ("/", "/health"):
            if endpoint.state in ("running", "updating"):
                return PlainTextResponse("Ok")
            return JSONResponse({"error": "unhealthy", "error_type": "healthcheck"}, 503)
        return PlainTextResponse("Not Found", 404)
    if method != "POST":
        return PlainTextResponse("Method Not Allowed", 405)
    endpoint.meter.requests += 1
    if endpoint.state == "scaledToZero":
        world.wake(endpoint)
    hold = headers.get("x-scale-up-timeout")
    if endpoint.state not in ("running", "updating") and hold:
        deadline = time.time() + min(float(hold), 600.0)
        while world.advance(endpoint).state not in ("running", "updating") and time.time() < deadline:
            if endpoint.state in ("failed", "paused"):
                break
            await asyncio.sleep(0.05)
    if endpoint.state not in ("running", "updating"):
        return JSONResponse({"error": f"Endpoint is {endpoint.state}, service unavailable"}, 503)
    if endpoint.in_flight >= settings.capacity * endpoint.replicas:
        return JSONResponse({"error": "Model is overloaded", "error_type": "overloaded"}, 429)
    if payload is _NOT_JSON:
        return JSONResponse({"error": "Failed to parse the request body as JSON"}, 400)
    endpoint.in_flight += 1
    try:
        # The request takes latency_ms in all, counted from its arrival: the emulator's own work is part of it.
        await asyncio.sleep(max(0.0, arrived + settings.latency_ms / 1000.0 - time.monotonic()))
        try:
            return JSONResponse(runners.answer(endpoint.task, rest, payload))
        except runners.BadInput as exc:
            return JSONResponse({"error": str(exc), "error_type": "validation"}, 422)
        except LookupError:
            return PlainTextResponse("Not Found", 404)
    finally:
        endpoint.in_flight -= 1


def _scope_of(world: World, method: str, path: str) -> str | None:
    if path.startswith(("/v2/", "/api/")):
        return "management"
    match = DATA_PLANE.match(path)
    if match is None:
        return None
    endpoint = world.endpoints.get((match["namespace"], match["name"]))
    rest = match["rest"] or "/"
    if method == "GET" and endpoint is not None and rest == endpoint.health_route:
        return "health"
    return "inference"


class Gate:
    """Outer ASGI layer: records each request in the log and applies injected faults."""

    def __init__(self, app: FastAPI, world: World, faults: FaultPlan, log: list[dict[str, Any]]) -> None:
        self.app = app
        self.world = world
        self.faults = faults
        self.log = log

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if not self.world.base_url and scope.get("server"):
            host, port = scope["server"][:2]
            self.world.base_url = f"http://{host}:{port}"
        kind = _scope_of(self.world, scope["method"], scope["path"])
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            payload = _NOT_JSON
        entry = self._record(scope, body, payload, kind)
        fault = self.faults.pick(kind, scope["method"]) if kind else None
        if fault is not None:
            entry["fault"] = fault.kind
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        if fault is not None and fault.phase == "before":
            await self._inflict(fault, kind, receive, send, entry)
            return
        if kind in ("inference", "health"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            response = await serve_data_plane(
                self.world, scope["method"], scope["path"], headers, payload, arrived
            )
            if fault is not None:  # "after": processed, then the answer is lost
                await self._inflict(fault, kind, receive, send, entry)
                return
            entry["status"] = response.status_code
            await response(scope, receive, send)
            return
        if fault is not None:  # "after": process, then lose the answer
            await self.app(scope, replay, _discard)
            await self._inflict(fault, kind, receive, send, entry)
            return
        await self.app(scope, replay, recording_send)

    def _record(self, scope: dict[str, Any], body: bytes, payload: Any, kind: str | None) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope["headers"]:
            key = raw_key.decode("latin-1").lower()
            headers[key] = "[redacted]" if key == "authorization" else raw_value.decode("latin-1")
        if payload is _NOT_JSON:
            payload = body.decode("utf-8", "replace")
        entry = {
            "id": len(self.log) + 1,
            "time": time.time(),
            "scope": kind,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": headers,
            "json": payload,
            "status": None,
            "fault": None,
        }
        self.log.append(entry)
        return entry

    async def _inflict(self, fault: Fault, kind: str | None, receive, send, entry: dict[str, Any]) -> None:
        if fault.kind == "reset":
            entry["status"] = 0
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                transport.abort()  # the client sees the connection reset, with no answer at all
                return
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
            )
            await send({"type": "http.response.body", "body": b"partial", "more_body": False})
            return
        if fault.kind == "timeout":
            entry["status"] = 0
            await _hold_until_disconnect(receive, FAULT_HOLD_SECONDS)
            return
        status = int(fault.kind)
        headers = {"retry-after": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        if kind == "management":
            message = {
                429: "Too many requests",
                500: "Internal server error",
                502: "Bad gateway",
                503: "Service unavailable",
            }[status]
            response: Response = api_error(status, f"{message} (injected fault)", headers)
        elif status == 429:
            response = JSONResponse(
                {"error": "Model is overloaded", "error_type": "overloaded"}, 429, headers
            )
        else:
            response = JSONResponse({"error": f"injected fault {status}"}, status, headers)
        entry["status"] = status
        await response({"type": "http"}, receive, send)


async def _discard(message: dict[str, Any]) -> None:
    return None


async def _hold_until_disconnect(receive, limit: float) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), limit)
    except TimeoutError:
        pass


def create_app(
    settings: Settings | None = None, faults: list[Fault] | None = None, seed: int | None = None
) -> Gate:
    """Build the emulator as an ASGI application (wrap it in uvicorn, or use it in-process)."""
    settings = settings or Settings()
    world = World(settings)
    plan = FaultPlan(faults, seed)
    request_log: list[dict[str, Any]] = []
    app = FastAPI(
        title="hfep emulator",
        docs_url="/_emulator/docs",
        openapi_url="/_emulator/openapi.json",
        redoc_url=None,
    )

    def caller(request: Request) -> User | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        return world.user_for(token)

    def authorize(request: Request, namespace: str) -> tuple[User | None, JSONResponse | None]:
        user = caller(request)
        if user is None:
            return None, api_error(401, "Invalid credentials in Authorization header")
        if not user.may_act_in(namespace):
            return None, api_error(403, f"You don't have access to namespace {namespace}")
        if namespace in world.unbilled_namespaces:
            return None, api_error(401, f"Namespace {namespace} has no payment method")
        return user, None

    def not_found(namespace: str, name: str) -> JSONResponse:
        return api_error(404, f"Endpoint {namespace}/{name} not found")

    async def json_body(request: Request) -> tuple[Any, JSONResponse | None]:
        try:
            return await request.json(), None
        except ValueError:
            return None, api_error(400, "Failed to parse the request body as JSON")

    # -- management API ------------------------------------------------------------------------

    @app.get("/api/whoami-v2")
    async def whoami(request: Request):
        user = caller(request)
        if user is None:
            return api_error(401, "Invalid user token")
        return {
            "type": "user",
            "id": user.name,
            "name": user.name,
            "fullname": user.name,
            "orgs": [{"type": "org", "name": org, "fullname": org} for org in user.orgs],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "hfep-emulator", "role": "write"},
            },
        }

    @app.get("/v2/endpoint/{namespace}")
    async def list_endpoints(namespace: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        return {"items": [world.to_json(e) for e in world.in_namespace(namespace)]}

    @app.post("/v2/endpoint/{namespace}")
    async def create_endpoint(namespace: str, request: Request):
        user, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        body, refusal = await json_body(request)
        refusal = refusal or check_create_body(body)
        if refusal:
            return refusal
        if world.get(namespace, body["name"]) is not None:
            return api_error(409, "Endpoint name already exists")
        return world.to_json(world.create(namespace, body, user.name))

    @app.get("/v2/endpoint/{namespace}/{name}")
    async def get_endpoint(namespace: str, name: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        endpoint = world.get(namespace, name)
        return not_found(namespace, name) if endpoint is None else world.to_json(endpoint)

    @app.put("/v2/endpoint/{namespace}/{name}")
    async def update_endpoint(namespace: str, name: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        endpoint = world.get(namespace, name)
        if endpoint is None:
            return not_found(namespace, name)
        body, refusal = await json_body(request)
        if refusal is None and not isinstance(body, dict):
            refusal = api_error(400, "Failed to parse the request body as JSON: expected an object")
        refusal = refusal or check_shared(body)
        if refusal:
            return refusal
        for fixed in ("type", "provider", "name"):
            if fixed in body and body[fixed] != endpoint.config.get(fixed):
                return validation_failed(fixed, "cannot be changed by an update")
        merged_scaling = {
            **endpoint.config["compute"]["scaling"],
            **(body.get("compute") or {}).get("scaling", {}),
        }
        refusal = check_shared({"compute": {"scaling": merged_scaling}})
        if refusal:
            return refusal
        answer = world.to_json(endpoint)  # answered from the state before the update is applied
        world.update(endpoint, body)
        answer.update({k: v for k, v in world.to_json(endpoint).items() if k != "status"})
        return answer

    @app.delete("/v2/endpoint/{namespace}/{name}")
    async def delete_endpoint(namespace: str, name: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        endpoint = world.get(namespace, name)
        if endpoint is None:
            return not_found(namespace, name)
        world.delete(endpoint)
        return Response(status_code=200)

    @app.post("/v2/endpoint/{namespace}/{name}/{action}")
    async def endpoint_action(namespace: str, name: str, action: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
        endpoint = world.get(namespace, name)
        if endpoint is None:
            return not_found(namespace, name)
        if action == "pause":
            world.pause(endpoint)
        elif action == "scale-to-zero":
            if endpoint.state == "paused":
                return api_error(400, "Bad Request: Invalid state: endpoint is paused, resume it first")
            world.scale_to_zero(endpoint)
        elif action == "resume":
            if endpoint.state == "running":
                return api_error(400, "Bad Request: Endpoint is already running")
            world.resume(endpoint)
        else:
            return api_error(404, f"Unknown action {action}")
        return world.to_json(endpoint)

    @app.get("/v2/provider/{namespace}")
    async def hardware(namespace: str, request: Request):
        _, refusal = authorize(request, namespace)
        if refusal:
            return refusal
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

    # -- control API ---------------------------------------------------------------------------

    @app.post("/_emulator/reset")
    async def reset():
        world.reset()
        request_log.clear()
        plan.replace([], plan.seed)
        return {"reset": True}

    @app.get("/_emulator/config")
    async def config():
        return {
            "users": [{"name": u.name, "orgs": list(u.orgs)} for u in settings.users],
            "deploy_seconds": settings.deploy_seconds,
            "cold_start_seconds": settings.cold_start_seconds,
            "update_lag_seconds": settings.update_lag_seconds,
            "latency_ms": settings.latency_ms,
            "capacity": settings.capacity,
            "faults": [f.to_json() for f in plan.faults],
            "seed": plan.seed,
        }

    @app.get("/_emulator/requests")
    async def requests(scope: str | None = None, since: int = 0):
        return {
            "requests": [e for e in request_log if e["id"] > since and (scope is None or e["scope"] == scope)]
        }

    @app.delete("/_emulator/requests")
    async def clear_requests():
        request_log.clear()
        return {"cleared": True}

    @app.get("/_emulator/faults")
    async def get_faults():
        return {"faults": [f.to_json() for f in plan.faults], "seed": plan.seed}

    @app.put("/_emulator/faults")
    async def put_faults(request: Request):
        body = await request.json()
        try:
            faults = [
                Fault(**{k: v for k, v in item.items() if k != "hits"}) for item in body.get("faults", [])
            ]
        except (TypeError, ValueError) as exc:
            return api_error(400, str(exc))
        plan.replace(faults, body.get("seed", plan.seed))
        return {"faults": [f.to_json() for f in plan.faults], "seed": plan.seed}

    @app.post("/_emulator/endpoints/{namespace}")
    async def seed_endpoint(namespace: str, request: Request):
        body = await request.json()
        state = body.pop("state", "running")
        owner = body.pop("owner", namespace)
        refusal = check_create_body(body)
        if refusal:
            return refusal
        if state not in STATES:
            return api_error(400, f"unknown state {state!r}")
        if world.get(namespace, body["name"]) is not None:
            return api_error(409, "Endpoint name already exists")
        return world.to_json(world.create(namespace, body, owner, state))

    @app.post("/_emulator/endpoints/{namespace}/{name}/state")
    async def force_state(namespace: str, name: str, request: Request):
        body = await request.json()
        endpoint = world.get(namespace, name)
        if endpoint is None:
            return not_found(namespace, name)
        if body.get("state") not in STATES:
            return api_error(
                400, f"unknown state {body.get('state')!r}; use one of {', '.join(sorted(STATES))}"
            )
        world.force(endpoint, body["state"], body.get("message"))
        return world.to_json(endpoint)

    @app.get("/_emulator/billing")
    async def billing():
        meters = {
            f"{ns}/{name}": world.meter(ns, name) for ns, name in [*world.endpoints, *world.deleted_meters]
        }
        return {key: vars(meter) for key, meter in meters.items() if meter is not None}

    @app.get("/_emulator/endpoints/{namespace}/{name}/billing")
    async def endpoint_billing(namespace: str, name: str):
        meter = world.meter(namespace, name)
        return not_found(namespace, name) if meter is None else vars(meter)

    @app.put("/_emulator/namespaces/{namespace}")
    async def namespace_settings(namespace: str, request: Request):
        body = await request.json()
        if body.get("billing", True):
            world.unbilled_namespaces.discard(namespace)
        else:
            world.unbilled_namespaces.add(namespace)
        return {"namespace": namespace, "billing": namespace not in world.unbilled_namespaces}

    return Gate(app, world, plan, request_log)
