"""
The Airflow plugin that adds the "Inference Endpoints" page (entry point ``airflow.plugins``).

On Airflow 3.1 and later: the page's FastAPI app, mounted by the API server at ``URL_PREFIX``, and an
external view in the UI's navigation (under Browse) that shows it. Airflow 3.0's UI has no place for a
plugin's page: the plugin adds nothing there and says so once in the log. Every Airflow process loads
plugins (the workers too), so this module imports little; the app is built where it is served.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_hfep._compat import AIRFLOW_V_3_1_PLUS, conf

__all__ = ["PAGE_ROUTE", "URL_PREFIX", "HuggingFaceEndpointsPlugin", "page_wanted"]

log = logging.getLogger(__name__)

#: where the API server mounts the page's app (``airflow_provider_hfep.ui.app.URL_PREFIX``)
URL_PREFIX = "/hf-inference-endpoints"
#: the page's address inside the UI: ``/plugin/inference-endpoints``
PAGE_ROUTE = "inference-endpoints"
#: the switch: ``[hf_inference_endpoints] ui_page`` (``AIRFLOW__HF_INFERENCE_ENDPOINTS__UI_PAGE=False``)
SECTION, OPTION = "hf_inference_endpoints", "ui_page"


def page_wanted() -> bool:
    """Tell whether the page is turned on (``[hf_inference_endpoints] ui_page``, default on)."""
    return conf.getboolean(SECTION, OPTION, fallback=True)


class _LazyApp:
    """
    An ASGI app that builds the page's app at its first request.

    A worker loads plugins too and never serves the page: it imports none of the page's modules. The
    build (imports, templates) runs in a worker thread, not on the API server's event loop.
    """

    def __init__(self) -> None:
        self._app: Any = None
        self._building = asyncio.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            async with self._building:
                if self._app is None:
                    self._app = await asyncio.to_thread(_build_app)
        await self._app(scope, receive, send)


def _build_app() -> Any:
    from airflow_provider_hfep.ui.app import create_app

    return create_app()


class HuggingFaceEndpointsPlugin(AirflowPlugin):
    """The "Inference Endpoints" page: endpoints, nights and their cost, pause and resume (Airflow 3.1+)."""

    name = "hf_inference_endpoints"
    if AIRFLOW_V_3_1_PLUS and page_wanted():
        fastapi_apps = [{"app": _LazyApp(), "url_prefix": URL_PREFIX, "name": "Inference Endpoints"}]
        external_views = [
            {
                "name": "Inference Endpoints",
                "href": f"{URL_PREFIX}/",
                "destination": "nav",
                "category": "browse",
                "url_route": PAGE_ROUTE,
            }
        ]

    @classmethod
    def on_load(cls, *args: Any, **kwargs: Any) -> None:
        """Say once, in the API server only (not in every task's log), why the page is not there."""
        if "airflow.api_fastapi.app" not in sys.modules:
            return
        if not AIRFLOW_V_3_1_PLUS:
            log.info(
                "airflow-provider-hfep: the Inference Endpoints page needs Airflow 3.1 or later (its UI "
                "shows plugins' pages); this Airflow is older, so the page is not added. Nothing else changes."
            )
        elif not page_wanted():
            log.info("airflow-provider-hfep: the Inference Endpoints page is off ([%s] %s)", SECTION, OPTION)
