"""Window runs written straight into Airflow's metadata database, as the window leaves them (a run,
its task instances, the cost report and the other XComs), for the page's tests and benchmark."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CONN_ID = "hf_inference_endpoints_default"


def report(endpoint: str, seconds: float, *, namespace: str = "demo", price: float = 0.8) -> dict[str, Any]:
    """A cost report as the window's cost_report task returns it."""
    return {
        "billable_seconds": seconds,
        "replica_seconds": seconds,
        "state": "paused",
        "replicas": 1,
        "hardware": "aws/us-east-1 nvidia-l4 x1",
        "price_per_hour": price,
        "estimated_cost_usd": round(seconds / 3600 * price, 6),
        "source": "replicas",
        "summary": f"Billed {seconds} replica-seconds",
        "cap": None,
        "endpoint": endpoint,
        "namespace": namespace,
        "hf_conn_id": CONN_ID,
    }


def seed_windows(
    session: Session, runs: int, endpoints: int, *, dags: int | None = None, prefix: str = "nightly"
) -> None:
    """
    Write ``runs`` window runs of ``dags`` DAGs (default one per 100 runs), one night apart per DAG.

    Each run has the window's XComs: the resume's and the pause's endpoint, the inference task's work
    summary (119 results, 1 failure), and the cost report (30 to 60 minutes at $0.80/h), on endpoints
    ``ep-000`` to ``ep-<endpoints - 1>`` (two per DAG, on alternate nights). Return the DAG ids.
    """
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel

    dags = dags or max(1, runs // 100)
    today = datetime.now(UTC).replace(hour=1, minute=30, second=0, microsecond=0)
    if session.get(DagBundleModel, "seeded") is None:
        session.execute(insert(DagBundleModel.__table__), [{"name": "seeded", "active": True}])
    known = set(session.scalars(select(DagModel.dag_id)))
    missing = [f"{prefix}_{d:03d}" for d in range(dags) if f"{prefix}_{d:03d}" not in known]
    if missing:
        session.execute(
            insert(DagModel.__table__),
            [
                {
                    "dag_id": dag_id,
                    "bundle_name": "seeded",
                    "max_active_tasks": 16,
                    "max_consecutive_failed_dag_runs": 0,
                    "has_task_concurrency_limits": False,
                    "is_paused": False,
                }
                for dag_id in missing
            ],
        )
    first_id = (session.scalar(select(func.max(DagRun.id))) or 0) + 1
    run_rows, ti_rows, xcom_rows = [], [], []
    for r in range(runs):
        dag_id, night = f"{prefix}_{r % dags:03d}", r // dags
        run_after = today - timedelta(days=night)
        run_id = f"scheduled__{run_after.isoformat()}"
        dag_run_id = first_id + r
        run_rows.append(
            {
                "id": dag_run_id,
                "dag_id": dag_id,
                "run_id": run_id,
                "run_type": "scheduled",
                "state": "success",
                "run_after": run_after,
                "logical_date": run_after,
                "start_date": run_after,
                "end_date": run_after + timedelta(hours=1),
            }
        )
        endpoint = f"ep-{((r % dags) * 2 + night % 2) % endpoints:03d}"
        opened = {"name": endpoint, "namespace": "demo", "status": "paused"}
        values = {
            "endpoint_window.resume": ("return_value", opened),
            "endpoint_window.pause": ("return_value", opened),
            "endpoint_window.infer": ("summary", {"count": 120, "succeeded": 119, "failed": 1}),
            "endpoint_window.cost_report": ("return_value", report(endpoint, 1800 + (r * 37) % 1800)),
        }
        for task_id, (key, value) in values.items():
            ti_rows.append(
                {
                    "id": uuid.uuid4(),
                    "task_id": task_id,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "map_index": -1,
                    "pool": "default_pool",
                    "state": "success",
                }
            )
            xcom_rows.append(
                {
                    "dag_run_id": dag_run_id,
                    "task_id": task_id,
                    "map_index": -1,
                    "key": key,
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "value": json.dumps(value),
                    "timestamp": run_after,
                }
            )
    for table, rows in ((DagRun, run_rows), (TaskInstance, ti_rows), (XComModel, xcom_rows)):
        for start in range(0, len(rows), 2000):
            session.execute(insert(table.__table__), rows[start : start + 2000])
    return [f"{prefix}_{d:03d}" for d in range(dags)]
