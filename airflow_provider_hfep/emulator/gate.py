"""
The outer ASGI layer: every request is logged, and faults are injected.

The log redacts authorization. Faults are applied before FastAPI sees the request, so a ``reset``
aborts the TCP connection for real and a ``phase: "after"`` fault processes the request and then
loses the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse, Response

from airflow_provider_hfep.emulator import runners
from airflow_provider_hfep.emulator.data_plane import DATA_PLANE, NOT_JSON, HeldStream, serve_data_plane
from airflow_provider_hfep.emulator.faults import INVALID_OUTPUT
from airflow_provider_hfep.emulator.validation import api_error

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Message, Receive, Scope, Send

    from airflow_provider_hfep.emulator.faults import Fault, FaultPlan
    from airflow_provider_hfep.emulator.state import World

#: how long a ``timeout`` fault holds a request without answering (the client gives up first)
FAULT_HOLD_SECONDS = 60.0


def _scope_of(world: World, method: str, path: str) -> str | None:
    if path.startswith(("/v2/", "/v3/", "/api/")):
        return "management"
    match = DATA_PLANE.match(path)
    if match is None:
        return None
    endpoint = world.endpoints.get((match["namespace"], match["name"]))
    rest = match["rest"] or "/"
    if method == "GET" and endpoint is not None and rest == endpoint.health_route:
        return "health"
    if method == "GET":  # what the server says of itself (/info, /v1/models): not inference work
        return "server"
    return "inference"


#: request body keys whose values the log never keeps (an endpoint's ``secrets`` keep their names)
SECRET_KEYS = frozenset({"password", "token", "authorization"})


def redact(value: Any) -> Any:
    """Copy a JSON value with secret values hidden: under ``secrets``, and of secret-named keys."""
    if isinstance(value, dict):
        return {key: _redact_entry(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _redact_entry(key: str, value: Any) -> Any:
    if key == "secrets" and isinstance(value, dict):
        return {name: "[redacted]" for name in value}
    if key.lower() in SECRET_KEYS and value not in (None, ""):
        return "[redacted]"
    return redact(value)


class RequestLog(list[dict[str, Any]]):
    """
    The request log: every request the emulated service got, the newest ``size`` kept.

    Each entry has an ``id`` that keeps counting when the oldest are dropped (``?since=`` reads on).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.next_id = 1

    def add(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry["id"] = self.next_id
        self.next_id += 1
        self.append(entry)
        if len(self) > self.size:
            del self[: len(self) - self.size]
        return entry


class Gate:
    """Outer ASGI layer: records each request in the log and applies injected faults."""

    def __init__(self, app: FastAPI, world: World, faults: FaultPlan, log: RequestLog) -> None:
        self.app = app
        self.world = world
        self.faults = faults
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            payload = NOT_JSON
        entry = self._record(scope, body, payload, kind)
        structured = kind == "inference" and runners.asks_structure(payload)
        fault = self.faults.pick(kind, scope["method"], structured) if kind else None
        if fault is not None:
            entry["fault"] = fault.kind
        if fault is not None and fault.kind == INVALID_OUTPUT:
            runners.SPOILED.set(True)  # answered as usual, but not as asked (this request's context only)
            fault = None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        if fault is not None and fault.phase == "before":
            await self._inflict(fault, kind, receive, send, entry)
            return
        if kind in ("inference", "health", "server"):
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            response = await serve_data_plane(
                self.world, scope["method"], scope["path"], headers, payload, arrived
            )
            if fault is not None:  # "after": processed, then the answer is lost
                if isinstance(response, HeldStream):
                    response.release()  # the stream never runs: its slot goes back now
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

    def _record(self, scope: Scope, body: bytes, payload: Any, kind: str | None) -> dict[str, Any]:
        headers: dict[str, str] = {}
        for raw_key, raw_value in scope["headers"]:
            key = raw_key.decode("latin-1").lower()
            headers[key] = "[redacted]" if key == "authorization" else raw_value.decode("latin-1")
        limit = self.world.settings.request_body_bytes
        if len(body) > limit:
            payload = f"[{len(body)} bytes, over the log's {limit}: not kept]"
        elif payload is NOT_JSON:
            payload = body.decode("utf-8", "replace")
        else:
            payload = redact(payload)  # the log is readable by whoever reaches the control API
        entry = {
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
        return self.log.add(entry)

    async def _inflict(
        self, fault: Fault, kind: str | None, receive: Receive, send: Send, entry: dict[str, Any]
    ) -> None:
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


async def _discard(message: Message) -> None:
    return None


async def _hold_until_disconnect(receive: Receive, limit: float) -> None:
    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(disconnected(), limit)
