"""
Each endpoint's data plane (its ``status.url``): health, inference, and the states that refuse them.

Served straight from :class:`~airflow_provider_hfep.emulator.gate.Gate`, outside FastAPI: the
benchmarks push hundreds of requests a second through here, and the emulator must not be what limits
them.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from airflow_provider_hfep.emulator import runners

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator.state import World

DATA_PLANE = re.compile(r"^/endpoints/(?P<namespace>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$")
#: a request body that is not JSON (kept apart from ``None``, an empty body)
NOT_JSON = object()


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
    if match is None:
        return PlainTextResponse("Not Found", 404)
    endpoint = world.get(match["namespace"], match["name"])
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
    if payload is NOT_JSON:
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
