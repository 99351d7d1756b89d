"""What the page reads from Airflow's metadata database (a real one, migrated): the cost reports, kept
decoded between loads and read again when written again; the work; the connections."""

from __future__ import annotations

import json
import secrets

import pytest
from airflow.models.connection import Connection
from airflow.models.dag import DagModel
from airflow.models.dagrun import DagRun
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import delete, update

from airflow_provider_hfep.ui.records import ReportCache, add_work, connection_ids, dag_ids_using

from tests.ui_seed import report, seed_windows

REPORT = "endpoint_window.cost_report"


@pytest.fixture
def seeded():
    """30 window runs of 3 DAGs of its own, on 4 endpoints; removed after."""
    prefix = f"ui_{secrets.token_hex(3)}"
    with create_session() as session:
        dags = seed_windows(session, 30, 4, dags=3, prefix=prefix)
    yield dags
    with create_session() as session:
        for model in (XComModel, TaskInstance, DagRun, DagModel):
            session.execute(delete(model).where(model.dag_id.in_(dags)))


def ours(nights, dags):
    return [n for n in nights if n.dag_id in dags]


def test_the_reports_become_nights_newest_first(seeded):
    cache = ReportCache()
    with create_session() as session:
        nights = ours(cache.read_nights(session, readable=None), seeded)
    assert len(nights) == 30
    assert {n.dag_id for n in nights} == set(seeded)
    assert [n.run_after for n in nights] == sorted((n.run_after for n in nights), reverse=True)
    assert all(n.cost == pytest.approx(n.billable_seconds / 3600 * 0.8, abs=1e-6) for n in nights)
    assert {n.key for n in nights} == {f"demo/ep-{i:03d}" for i in range(4)}
    assert {n.run_state for n in nights} == {"success"}


def test_only_the_readable_dags(seeded):
    with create_session() as session:
        nights = ReportCache().read_nights(session, readable={seeded[0]})
    assert {n.dag_id for n in nights} == {seeded[0]}
    assert len(nights) == 10


def test_a_report_written_again_a_run_that_moved_on_and_a_removed_one_are_seen(seeded):
    cache = ReportCache()
    with create_session() as session:
        first = ours(cache.read_nights(session, readable=None), seeded)
    newest = first[0]
    oldest = first[-1]
    with create_session() as session:
        session.execute(
            update(XComModel)
            .where(
                XComModel.dag_id == newest.dag_id,
                XComModel.run_id == newest.run_id,
                XComModel.task_id == REPORT,
            )
            .values(value=json.dumps(report("ep-009", 7200)), timestamp=newest.run_after.replace(minute=59))
        )
        session.execute(
            update(DagRun)
            .where(DagRun.dag_id == first[1].dag_id, DagRun.run_id == first[1].run_id)
            .values(state="failed")
        )
        session.execute(
            delete(XComModel).where(
                XComModel.dag_id == oldest.dag_id,
                XComModel.run_id == oldest.run_id,
                XComModel.task_id == REPORT,
            )
        )
    with create_session() as session:
        again = ours(cache.read_nights(session, readable=None), seeded)
    assert len(again) == 29
    assert (again[0].endpoint, again[0].cost) == ("ep-009", pytest.approx(1.6))
    assert again[1].run_state == "failed"
    assert oldest.run_id not in {n.run_id for n in again if n.dag_id == oldest.dag_id}


def test_the_work_of_the_shown_nights_and_the_dags_using_an_endpoint(seeded):
    cache = ReportCache()
    with create_session() as session:
        nights = ours(cache.read_nights(session, readable=None), seeded)
        worked = add_work(session, nights[:5])
        using = dag_ids_using(cache, session, "hf_inference_endpoints_default", "demo", "ep-000")
        elsewhere = dag_ids_using(cache, session, "another_connection", "demo", "ep-000")
    assert [(n.results, n.failures) for n in worked] == [(119, 1)] * 5
    assert using & set(seeded) == {n.dag_id for n in nights if n.endpoint == "ep-000"}
    assert not elsewhere & set(seeded)  # those windows ran it through the default connection


def test_the_connections_of_the_type_in_the_database_and_the_environment():
    name = f"hf_ui_{secrets.token_hex(3)}"
    with create_session() as session:
        session.add(Connection(conn_id=name, conn_type="hf_inference_endpoints", password="hf_x"))
        session.add(Connection(conn_id=f"{name}_http", conn_type="http"))
    environ = {
        "AIRFLOW_CONN_FROM_JSON": json.dumps({"conn_type": "hf_inference_endpoints", "password": "hf_x"}),
        "AIRFLOW_CONN_FROM_URI": "hf-inference-endpoints://:hf_x@api.example",
        "AIRFLOW_CONN_OTHER": "postgres://u:p@db/x",
        "AIRFLOW_CONN_BROKEN": "{not json",
    }
    try:
        with create_session() as session:
            found = connection_ids(session, environ)
        assert name in found
        assert f"{name}_http" not in found
        assert {"from_json", "from_uri"} <= set(found)
        assert not {"other", "broken"} & set(found)
    finally:
        with create_session() as session:
            session.execute(delete(Connection).where(Connection.conn_id.in_([name, f"{name}_http"])))
