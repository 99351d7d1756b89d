"""
Each endpoint's data plane (its ``status.url``): health, inference, and the states that refuse them.

Served straight from :class:`~airflow_provider_hfep.emulator.gate.Gate`, outside FastAPI: the
benchmarks push hundreds of requests a second through here, and the emulator must not be what limits
them.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from airflow_provider_hfep.emulator import engines, runners

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_hfep.emulator.settings import Settings
    from airflow_provider_hfep.emulator.state import Endpoint, World

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
    image = endpoint.config["model"].get("image") or {}
    engine = engines.engine_for(next(iter(image), None))
    if method == "GET":
        if rest == endpoint.health_route or rest in ("/", "/health"):
            if endpoint.state in ("running", "updating"):
                return PlainTextResponse("Ok")
            return JSONResponse({"error": "unhealthy", "error_type": "healthcheck"}, 503)
        route = engine.routes.get(rest)
        if not engine.serves(rest) or route is None or route.describe is None:
            return PlainTextResponse("Not Found", 404)
        if endpoint.state not in ("running", "updating"):
            return JSONResponse({"error": f"Endpoint is {endpoint.state}, service unavailable"}, 503)
        return JSONResponse(engine.describe(rest, _served(endpoint, settings)))
    if method != "POST":
        return PlainTextResponse("Method Not Allowed", 405)
    if not engine.serves(rest):
        return PlainTextResponse("Not Found", 404)  # not this engine's route, as its server would answer
    endpoint.meter.requests += 1
    endpoint.last_request = time.time()  # what keeps a minReplica 0 endpoint from scaling to zero
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
    try:
        engine.check_batch(payload, settings.max_client_batch_size)
        events = engine.streamed(rest, payload)
    except runners.TooLarge as exc:
        return JSONResponse({"error": str(exc), "error_type": "Validation"}, 413)
    except runners.BadInput as exc:
        return JSONResponse({"error": str(exc), "error_type": "validation"}, 422)
    if events is not None:
        done_marker = rest.startswith("/v1/")  # OpenAI-compatible routes end with data: [DONE]
        return HeldStream(endpoint, _stream(events, done_marker, arrived, settings.latency_ms / 1000.0))
    endpoint.in_flight += 1
    try:
        # The request takes latency_ms (and item_latency_ms per input it carries) in all, counted from its
        # arrival: the emulator's own work is part of it.
        service = settings.latency_ms + settings.item_latency_ms * runners.input_count(payload)
        await asyncio.sleep(max(0.0, arrived + service / 1000.0 - time.monotonic()))
        try:
            return JSONResponse(engine.answer(endpoint.task, rest, payload))
        except runners.BadInput as exc:
            return JSONResponse({"error": str(exc), "error_type": "validation"}, 422)
        except LookupError:
            return PlainTextResponse("Not Found", 404)
    finally:
        endpoint.in_flight -= 1
        endpoint.last_request = time.time()


class HeldStream(StreamingResponse):
    """
    A server-sent event stream that holds one of the endpoint's capacity slots until it is done.

    The slot is taken now and given back exactly once: when the stream ends, when its client goes
    away (Starlette cancels the stream), when sending fails, or when the answer is never sent (a fault
    that loses it: the gate calls :meth:`release`).
    """

    def __init__(self, endpoint: Endpoint, content: AsyncIterator[bytes]) -> None:
        super().__init__(content, media_type="text/event-stream")
        self._endpoint: Endpoint | None = endpoint
        endpoint.in_flight += 1

    def release(self) -> None:
        if self._endpoint is not None:
            self._endpoint.in_flight -= 1
            self._endpoint.last_request = time.time()
            self._endpoint = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()


async def _stream(
    events: list[dict[str, Any]], done_marker: bool, arrived: float, latency: float
) -> AsyncIterator[bytes]:
    """Frame ``events`` as server-sent events over ``latency`` seconds in all, as the engines do."""
    step = latency / max(1, len(events))
    for number, event in enumerate(events, start=1):
        await asyncio.sleep(max(0.0, arrived + step * number - time.monotonic()))
        yield b"data:" + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
    if done_marker:
        yield b"data: [DONE]\n\n"


def _served(endpoint: Endpoint, settings: Settings) -> engines.Served:
    """Tell what one replica's server knows of itself: its model, and its limits (each tells its own)."""
    model = endpoint.config["model"]
    return engines.Served(
        model_id=model["repository"],
        revision=model.get("revision"),
        task=endpoint.task,
        created=int(endpoint.history[0][0]) if endpoint.history else int(time.time()),
        max_concurrent_requests=settings.capacity,
        max_client_batch_size=settings.max_client_batch_size,
    )
