"""
What the page reads from Airflow's metadata database.

The windows' cost reports and work summaries (XComs the window already writes), and the
``hf_inference_endpoints`` connections.

Why XComs and no table of our own: a provider cannot add tables to Airflow's database (no migrations
of its own), the reports are already there for every window run, they go when ``airflow db clean``
removes the runs, and who may read them is who may read the DAG.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select

from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.ui.nights import REPORT_TASK, nights_of, select as newest_first, with_work

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from sqlalchemy.orm import Session

    from airflow_provider_hfep.ui.nights import Night

__all__ = ["ReportCache", "add_work", "connection_ids", "dag_ids_using"]

#: the key of the work summary the inference operator pushes
SUMMARY_KEY = "summary"


def _is_report_task(task_id: str) -> bool:
    return task_id == REPORT_TASK or task_id.endswith(f".{REPORT_TASK}")


class ReportCache:
    """
    The nights already read, by XCom row (run, task) and the time the report was written.

    A page load first reads which report rows exist, with their runs' state (no values), then the
    values of the rows it has not read yet, or that were written again: with 5,000 nights kept, a
    load decodes only the new ones. Rows gone from the database (``airflow db clean``) are dropped.
    """

    def __init__(self) -> None:
        self._nights: dict[tuple[int, str], tuple[datetime, list[Night]]] = {}
        self._lock = threading.Lock()

    def read_nights(self, session: Session, *, readable: Collection[str] | None) -> list[Night]:
        """
        Read the window runs' cost reports, newest first.

        :param session: a metadata database session.
        :param readable: the DAG ids the user may read (``None``: all).
        """
        from airflow.models.dagrun import DagRun
        from airflow.models.xcom import XComModel

        is_report = (XComModel.key == "return_value", XComModel.task_id.like(f"%{REPORT_TASK}"))
        rows = {
            (row.dag_run_id, row.task_id): row
            for row in session.execute(
                select(
                    XComModel.dag_run_id,
                    XComModel.task_id,
                    XComModel.timestamp,
                    XComModel.dag_id,
                    XComModel.run_id,
                    DagRun.run_after,
                    DagRun.state,
                )
                .join(DagRun, DagRun.id == XComModel.dag_run_id)
                .where(*is_report)
            )
            if _is_report_task(row.task_id)
        }
        with self._lock:
            kept = {key: self._nights[key] for key in rows.keys() & self._nights.keys()}
            stale = sorted(
                {key[0] for key, row in rows.items() if kept.get(key, (None,))[0] != row.timestamp}
            )
            for chunk in _chunks(stale, 500):
                values = select(XComModel.dag_run_id, XComModel.task_id, XComModel.value).where(
                    *is_report, XComModel.dag_run_id.in_(chunk)
                )
                for dag_run_id, task_id, value in session.execute(values):
                    if (row := rows.get((dag_run_id, task_id))) is not None:
                        kept[(dag_run_id, task_id)] = (row.timestamp, _nights(row, value))
            self._nights = kept
        nights: list[Night] = []
        for key, row in rows.items():
            if key not in kept or (readable is not None and row.dag_id not in readable):
                continue
            run_after, state = _run_after(row), getattr(row.state, "value", row.state)
            # the run may have moved on since its reports were read
            nights.extend(replace(night, run_after=run_after, run_state=state) for night in kept[key][1])
        return newest_first(nights)


def _run_after(row: Any) -> datetime:
    return row.run_after if row.run_after.tzinfo else row.run_after.replace(tzinfo=UTC)


def _nights(row: Any, value: Any) -> list[Night]:
    return nights_of(
        dag_id=row.dag_id,
        run_id=row.run_id,
        run_after=_run_after(row),
        run_state=getattr(row.state, "value", row.state),
        task_id=row.task_id,
        value=value,
    )


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def add_work(session: Session, nights: Sequence[Night]) -> list[Night]:
    """Add the results and failures of these nights' inference tasks: one query for their ``summary`` XComs."""
    from airflow.models.xcom import XComModel

    if not nights:
        return []
    summaries = session.execute(
        select(XComModel.dag_id, XComModel.run_id, XComModel.task_id, XComModel.value).where(
            XComModel.key == SUMMARY_KEY,
            XComModel.dag_id.in_({n.dag_id for n in nights}),
            XComModel.run_id.in_({n.run_id for n in nights}),
        )
    )
    return with_work(nights, summaries)


def _environment_conn_type(value: str) -> str | None:
    """Read the type of a connection given in an ``AIRFLOW_CONN_*`` variable (JSON or URI form)."""
    if value.lstrip().startswith("{"):
        try:
            conn_type = json.loads(value).get("conn_type")
        except (ValueError, AttributeError):
            return None
        return conn_type if isinstance(conn_type, str) else None
    return urlsplit(value).scheme.replace("-", "_") or None


def connection_ids(session: Session, environ: dict[str, str] | None = None) -> list[str]:
    """
    Name the ``hf_inference_endpoints`` connections: the metadata database's and the environment's.

    (A secrets backend cannot be listed; its connections are reached by typing their id in the page's
    address, ``?conn=<id>``.)
    """
    from airflow.models.connection import Connection

    conn_type = HuggingFaceEndpointHook.conn_type
    found = set(session.scalars(select(Connection.conn_id).where(Connection.conn_type == conn_type)).all())
    for name, value in (os.environ if environ is None else environ).items():
        if name.startswith("AIRFLOW_CONN_") and _environment_conn_type(value) == conn_type:
            found.add(name.removeprefix("AIRFLOW_CONN_").lower())
    return sorted(found)


def dag_ids_using(
    reports: ReportCache, session: Session, conn_id: str, namespace: str, endpoint: str
) -> set[str]:
    """Name the DAGs whose windows ever ran this endpoint through this connection (whoever asks)."""
    return {
        n.dag_id
        for n in newest_first(reports.read_nights(session, readable=None), hf_conn_id=conn_id)
        if (n.namespace, n.endpoint) == (namespace, endpoint)
    }
