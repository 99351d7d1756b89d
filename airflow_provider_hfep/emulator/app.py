"""
The emulator as one ASGI application: its parts wired together.

Layout of URLs on one server:

- ``/api/whoami-v2``, ``/v2/...`` and ``/v3/.../logs``: the management API (:mod:`.management`).
- ``/api/v1/catalog/...`` (and ``/api/catalog/...`` for older clients): the model catalog (:mod:`.catalog`).
- ``/endpoints/{namespace}/{name}/...``: the data plane of each endpoint, its ``status.url``
  (:mod:`.data_plane`).
- ``/_emulator/...``: control for tests (:mod:`.control`), behind a token when one is set.

Around them, :class:`~airflow_provider_hfep.emulator.gate.Gate` logs every request and injects faults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from airflow_provider_hfep.emulator import catalog, control, management
from airflow_provider_hfep.emulator.faults import Fault, FaultPlan
from airflow_provider_hfep.emulator.gate import Gate, RequestLog
from airflow_provider_hfep.emulator.scenario import Scenario
from airflow_provider_hfep.emulator.settings import Settings
from airflow_provider_hfep.emulator.state import World
from airflow_provider_hfep.emulator.validation import ApiError, api_error

if TYPE_CHECKING:
    from fastapi.responses import JSONResponse


async def _answer_api_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):  # registered for ApiError only
        raise exc
    return api_error(exc.status, exc.message)


def create_app(
    settings: Settings | None = None,
    faults: list[Fault] | None = None,
    seed: int | None = None,
    control_token: str | None = None,
) -> Gate:
    """
    Build the emulator as an ASGI application (wrap it in uvicorn, or use it in-process).

    With ``control_token``, the control API under ``/_emulator`` answers only requests that carry it
    (header ``X-Emulator-Control-Token``): it can reset the cloud and read every request.
    """
    world = World(settings or Settings())
    plan = FaultPlan(faults, seed)
    app = FastAPI(
        title="hfep emulator",
        docs_url="/_emulator/docs",
        openapi_url="/_emulator/openapi.json",
        redoc_url=None,
    )
    app.state.world = world
    app.state.faults = plan
    app.state.request_log = RequestLog(world.settings.request_log_size)
    app.state.control_token = control_token
    app.state.scenario = Scenario(world, plan)
    app.add_exception_handler(ApiError, _answer_api_error)
    app.include_router(management.router)
    app.include_router(catalog.router)
    app.include_router(catalog.legacy_router)
    app.include_router(control.router)
    return Gate(app, world, plan, app.state.request_log)
