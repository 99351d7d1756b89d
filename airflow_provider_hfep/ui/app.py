"""
The page's FastAPI app, mounted by Airflow's API server at ``URL_PREFIX``.

Every route depends on Airflow's own ``get_user`` (the UI's session cookie or a bearer token:
401 without, 403 with an invalid one), then asks the auth manager: the page needs the plugins view,
the endpoints of a connection need read access to it, the nights are those of DAGs the user may
read, and pause/resume need edit access to the connection or to every DAG whose windows ran the
endpoint. The routes are plain functions: FastAPI runs them in its thread pool, so neither the
database nor the HF API is ever waited on in the API server's event loop.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode, urlsplit

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.ui import records
from airflow_provider_hfep.ui.chart import cost_chart
from airflow_provider_hfep.ui.listing import ListingCache
from airflow_provider_hfep.ui.nights import cost_by_day, dags_using, last_nights, select
from airflow_provider_hfep.ui.plugin import URL_PREFIX

if TYPE_CHECKING:
    from airflow.api_fastapi.auth.managers.base_auth_manager import BaseAuthManager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser

    from airflow_provider_hfep.ui.nights import Night

__all__ = ["create_app", "may_edit"]

#: days the chart covers
CHART_DAYS = 30
#: nights the table shows at most (filters narrow it)
NIGHTS_SHOWN = 200
ACTIONS = ("pause", "resume")

#: the signed-in user, as Airflow's own routes get it (401 without a session or token, 403 with a bad one)
User = Annotated[Any, Depends(get_user)]

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _auth_manager() -> BaseAuthManager:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager()


def _may_see_the_page(user: BaseUser) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView

    return _auth_manager().is_authorized_view(access_view=AccessView.PLUGINS, user=user)


def _may_use_connection(user: BaseUser, conn_id: str, method: str) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import ConnectionDetails

    return _auth_manager().is_authorized_connection(
        method=method,  # type: ignore[arg-type]  # "GET" or "PUT"
        details=ConnectionDetails(conn_id=conn_id),
        user=user,
    )


def may_edit(*, connection: bool, dags: list[str], editable_dags: set[str]) -> bool:
    """
    Say whether a user may pause or resume an endpoint (pure).

    :param connection: whether they may edit the connection the page reads it through.
    :param dags: the DAGs whose windows ran the endpoint.
    :param editable_dags: the DAGs they may edit.
    """
    return connection or (bool(dags) and set(dags) <= editable_dags)


def _parse_day(field: str, text: str | None) -> date | None:
    """Read a filter's date; 422 naming the field and the fix when it is not one."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        refused = InvalidEndpointArgumentError(field, f"{text!r} is not a date", "use YYYY-MM-DD")
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(refused)) from None


def _same_origin(request: Request) -> bool:
    """Tell whether a form came from this site (browsers name its origin; the cookie is SameSite=Lax too)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def _default_connection(connections: list[str]) -> str | None:
    """Pick the hook's default connection when it is there, else the first."""
    default = HuggingFaceEndpointHook.default_conn_name
    return default if default in connections else next(iter(connections), None)


def usd(amount: float) -> str:
    """Write dollars: in cents, or in hundredths of a cent below one cent (a short night costs little)."""
    return f"${amount:,.2f}" if abs(amount) >= 0.01 or amount == 0 else f"${amount:.4f}"


def _page_path(request: Request) -> str:
    """Give the page's path as the browser sees it: Airflow's root path and the mount's prefix."""
    return f"{request.scope.get('root_path', '')}/"


def create_app(cache: ListingCache | None = None) -> FastAPI:
    """
    Build the page's app.

    :param cache: the endpoints listing cache (default: a new one, ``CACHE_SECONDS``).
    """
    listings = cache or ListingCache()
    reports = records.ReportCache()
    app = FastAPI(title="Hugging Face Inference Endpoints", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse, name="page")
    def page(
        request: Request,
        user: User,
        conn: Annotated[str | None, Query()] = None,
        dag: Annotated[str | None, Query()] = None,
        since: Annotated[str | None, Query()] = None,
        until: Annotated[str | None, Query()] = None,
        notice: Annotated[str | None, Query()] = None,
    ) -> HTMLResponse:
        """Show the endpoints of a connection, the nights, and the cost chart."""
        if not _may_see_the_page(user):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "You may not see this page")
        first, last = _parse_day("since", since), _parse_day("until", until)
        from airflow.utils.session import create_session

        manager = _auth_manager()
        with create_session() as session:
            connections = records.connection_ids(session)
            conn_id = conn or _default_connection(connections)
            readable = manager.get_authorized_dag_ids(user=user, method="GET", session=session)
            editable = manager.get_authorized_dag_ids(user=user, method="PUT", session=session)
            every = reports.read_nights(session, readable=None)
            nights = select((n for n in every if n.dag_id in readable), hf_conn_id=conn_id)
            shown = select(nights, dag_id=dag, since=first, until=last)
            worked = records.add_work(session, shown[:NIGHTS_SHOWN])
        context = _page_context(
            request=request,
            user=user,
            listings=listings,
            conn_id=conn_id,
            connections=connections,
            nights=nights,
            runners=dags_using(select(every, hf_conn_id=conn_id)),
            shown=worked,
            more=max(0, len(shown) - NIGHTS_SHOWN),
            editable=editable,
            filters={"dag": dag, "since": first, "until": last},
        )
        context["notice"] = notice
        return HTMLResponse(_templates.get_template("page.html").render(**context))

    @app.post("/endpoints/{namespace}/{name}/{action}", name="act")
    def act(
        request: Request,
        user: User,
        namespace: str,
        name: str,
        action: str,
        conn: Annotated[str, Form()],
    ) -> RedirectResponse:
        """Pause or resume an endpoint, for a user who may edit its connection or its DAGs."""
        if action not in ACTIONS:
            refused = InvalidEndpointArgumentError(
                "action", f"{action!r} is not an action", "use pause or resume"
            )
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(refused))
        if not _same_origin(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "The form was not sent from this site")
        from airflow.utils.session import create_session

        with create_session() as session:
            dags = sorted(records.dag_ids_using(reports, session, conn, namespace, name))
            editable = (
                _auth_manager().get_authorized_dag_ids(user=user, method="PUT", session=session)
                if dags
                else set()
            )
        if not may_edit(connection=_may_use_connection(user, conn, "PUT"), dags=dags, editable_dags=editable):
            using = ", ".join(dags) or "no DAG yet"
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"You may not {action} {namespace}/{name}: that needs edit access to connection {conn!r} "
                f"or to every DAG that runs it ({using})",
            )
        hook = HuggingFaceEndpointHook(conn)
        try:
            with hook.client as client:
                getattr(client, action)(name, namespace=namespace)
            done = f"{action} of {namespace}/{name} requested"
        except Exception as exc:  # the page says what went wrong: a missing connection, the API's answer
            done = f"{action} of {namespace}/{name} failed: {type(exc).__name__}: {exc}"
        finally:
            listings.forget(conn)
        target = f"{_page_path(request)}?{urlencode({'conn': conn, 'notice': done})}"
        return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)

    return app


def _page_context(
    *,
    request: Request,
    user: Any,
    listings: ListingCache,
    conn_id: str | None,
    connections: list[str],
    nights: list[Night],
    runners: dict[str, list[str]],
    shown: list[Night],
    more: int,
    editable: set[str],
    filters: dict[str, Any],
) -> dict[str, Any]:
    """
    Gather everything the template shows: the listing, the nights table, the chart, the buttons.

    A user who may read the connection sees all its endpoints; one who may not sees those that the
    DAGs they may read ran (``nights`` holds only those DAGs'), which those DAGs' XComs show them anyway.
    The buttons follow ``runners``: every DAG that ran the endpoint, readable by the user or not.
    """
    may_read_connection = conn_id is not None and _may_use_connection(user, conn_id, "GET")
    using = dags_using(nights)
    may_read = may_read_connection or bool(using)
    listing = listings.get(conn_id) if may_read and conn_id else None
    may_edit_connection = conn_id is not None and _may_use_connection(user, conn_id, "PUT")
    latest = last_nights(nights)
    today = datetime.now(UTC).date()
    end = filters["until"] or today
    series = cost_by_day(select(nights, dag_id=filters["dag"]), end=end, days=CHART_DAYS)
    last_day = max((n.day for n in latest.values()), default=None)
    root = request.scope.get("root_path", "").removesuffix(URL_PREFIX)
    rows = []
    for endpoint in listing.endpoints if listing else ():
        if not may_read_connection and endpoint.key not in using:
            continue
        rows.append(
            {
                "endpoint": endpoint,
                "dags": using.get(endpoint.key, []),
                "last": latest.get(endpoint.key),
                "editable": may_edit(
                    connection=may_edit_connection,
                    dags=runners.get(endpoint.key, []),
                    editable_dags=editable,
                ),
            }
        )
    return {
        "page_url": _page_path(request),
        "airflow_root": root,
        "conn_id": conn_id,
        "connections": connections,
        "may_read": may_read,
        "may_read_connection": may_read_connection,
        "listing": listing,
        "read_at": datetime.fromtimestamp(listing.read_at, UTC).strftime("%H:%M:%S UTC") if listing else "",
        "cache_seconds": listings.ttl,
        "rows": rows,
        "last_day": last_day,
        "last_night_cost": sum(n.cost or 0.0 for n in latest.values() if n.day == last_day),
        "usd": usd,
        "nights": shown,
        "more_nights": more,
        "dag_ids": sorted({n.dag_id for n in nights}),
        "filters": {k: (v.isoformat() if isinstance(v, date) else v or "") for k, v in filters.items()},
        "chart": cost_chart(series),
        "chart_days": CHART_DAYS,
        "chart_end": end,
    }
