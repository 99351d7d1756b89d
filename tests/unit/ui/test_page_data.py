"""The page's data, assembled without Airflow: the nights from cost reports, their work, the filters,
the cost per day and endpoint, the chart, who may act, and the listing cache."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from airflow_provider_hfep.endpoints.models import HardwareOption, InferenceEndpoint
from airflow_provider_hfep.ui.app import may_edit, usd
from airflow_provider_hfep.ui.chart import MAX_SERIES, cost_chart
from airflow_provider_hfep.ui.listing import Listing, ListingCache, row_of
from airflow_provider_hfep.ui.nights import (
    cost_by_day,
    dags_using,
    last_nights,
    night_of,
    nights_of,
    select,
    with_work,
)
from airflow_provider_hfep.window.billing import billable_report

OPENED = {
    "name": "batch",
    "namespace": "acme",
    "updated_at": "2026-12-01T01:30:00+00:00",
    "min_replica": 1,
    "vendor": "aws",
    "region": "us-east-1",
    "instance_type": "nvidia-l4",
    "instance_size": "x1",
}
CLOSED = {**OPENED, "status": "paused", "updated_at": "2026-12-01T02:30:00+00:00"}


def report(**extra):
    """A report as the window's cost_report task returns it (billing.py's, with the endpoint named)."""
    return {
        **billable_report(OPENED, CLOSED, 0.8),
        "endpoint": "batch",
        "namespace": "acme",
        "hf_conn_id": "hf",
        **extra,
    }


def a_night(
    day: int,
    *,
    dag="nightly",
    endpoint="batch",
    cost=None,
    conn="hf",
    hour=1,
    task="endpoint_window.cost_report",
):
    value = report(endpoint=endpoint, hf_conn_id=conn)
    if cost is not None:
        value["estimated_cost_usd"] = cost
    return night_of(
        dag_id=dag,
        run_id=f"scheduled__2026-12-{day:02d}",
        run_after=datetime(2026, 12, day, hour, 30, tzinfo=UTC),
        run_state="success",
        task_id=task,
        value=json.dumps(value),  # stored as JSON text
    )


def test_a_cost_report_becomes_a_night():
    night = a_night(1)
    assert (night.endpoint, night.namespace, night.hf_conn_id, night.key) == (
        "batch",
        "acme",
        "hf",
        "acme/batch",
    )
    assert night.group == "endpoint_window"
    assert night.billable_seconds == 3600.0
    assert night.cost == pytest.approx(0.8)  # an hour of one replica at $0.80
    assert night.hardware == "aws/us-east-1 nvidia-l4 x1"
    assert night.cap is None
    assert night.day == date(2026, 12, 1)


def test_a_report_the_window_never_closed_has_no_cost_and_says_why():
    night = night_of(
        dag_id="d",
        run_id="r",
        run_after=datetime(2026, 12, 1, tzinfo=UTC),
        run_state="failed",
        task_id="cost_report",
        value=billable_report(OPENED, None, 0.8),
    )
    assert (night.billable_seconds, night.cost, night.group) == (None, None, "")
    assert "may still be billing" in night.summary


def test_a_fired_cap_is_named():
    night = night_of(
        dag_id="d",
        run_id="r",
        run_after=datetime(2026, 12, 1, tzinfo=UTC),
        run_state="failed",
        task_id="w.cost_report",
        value=billable_report(OPENED, CLOSED, 0.8, cap={"cap": "max_cost", "summary": "x"}),
    )
    assert night.cap == "max_cost"


@pytest.mark.parametrize(
    "value", [None, 3, "not json", json.dumps([1]), {"results": 3}, {"billable_seconds": 1}]
)
def test_anything_else_is_not_a_night(value):
    assert (
        night_of(
            dag_id="d",
            run_id="r",
            run_after=datetime(2026, 12, 1, tzinfo=UTC),
            run_state=None,
            task_id="cost_report",
            value=value,
        )
        is None
    )


def test_the_work_of_each_window_is_added_up_by_group():
    outer = a_night(1)
    inner = a_night(1, task="outer.endpoint_window.cost_report")
    other_run = a_night(2)
    summaries = [
        ("nightly", outer.run_id, "endpoint_window.infer", {"succeeded": 40, "failed": 0}),
        (
            "nightly",
            outer.run_id,
            "endpoint_window.infer",
            json.dumps({"succeeded": 38, "failed": 2}),
        ),  # mapped
        ("nightly", outer.run_id, "outer.endpoint_window.infer", {"succeeded": 5, "failed": 1}),
        ("nightly", outer.run_id, "elsewhere", {"succeeded": 99, "failed": 99}),  # in no window
        ("nightly", outer.run_id, "endpoint_window.other", {"rows": 3}),  # not a work summary
        ("other_dag", outer.run_id, "endpoint_window.infer", {"succeeded": 7, "failed": 7}),
    ]
    worked = with_work([outer, inner, other_run], summaries)
    assert [(n.results, n.failures) for n in worked] == [(78, 2), (5, 1), (None, None)]


def test_select_filters_by_dag_dates_and_connection_newest_first():
    nights = [a_night(d, dag="a" if d % 2 else "b") for d in range(1, 11)]
    legacy = night_of(  # a report written before the endpoint was named in it: shown for every connection
        dag_id="a",
        run_id="old",
        run_after=datetime(2026, 11, 30, tzinfo=UTC),
        run_state="success",
        task_id="endpoint_window.cost_report",
        value=billable_report(OPENED, CLOSED, 0.8),
    )
    elsewhere = a_night(5, conn="other", dag="c")
    every = [*nights, legacy, elsewhere]
    assert [
        n.day.day for n in select(every, dag_id="a", since=date(2026, 12, 3), until=date(2026, 12, 7))
    ] == [7, 5, 3]
    assert [n.dag_id for n in select(every, hf_conn_id="hf")].count("c") == 0
    assert legacy in select(every, hf_conn_id="hf")
    assert [n.day for n in select(every)] == sorted((n.day for n in every), reverse=True)


def test_the_dags_using_an_endpoint_and_its_last_night():
    nights = [
        a_night(1, dag="b"),
        a_night(3, dag="a"),
        a_night(2, dag="a"),
        a_night(2, endpoint="other", dag="c"),
    ]
    assert dags_using(nights) == {"acme/batch": ["a", "b"], "acme/other": ["c"]}
    assert last_nights(nights)["acme/batch"].day == date(2026, 12, 3)


def test_cost_by_day_adds_up_each_endpoints_windows_over_the_period():
    nights = [
        a_night(10, cost=1.0),
        a_night(10, cost=0.5, hour=13),  # a second window that day
        a_night(11, cost=2.0, endpoint="big"),
        a_night(9, cost=None),  # unknown cost: counts nothing
        a_night(1, cost=50.0),  # before the period
    ]
    nights[3] = night_of(
        dag_id="d",
        run_id="r",
        run_after=datetime(2026, 12, 9, tzinfo=UTC),
        run_state=None,
        task_id="cost_report",
        value=billable_report(OPENED, None, 0.8),
    )
    series = cost_by_day(nights, end=date(2026, 12, 11), days=7)
    assert series.days == tuple(date(2026, 12, d) for d in range(5, 12))
    assert series.endpoints == ("acme/big", "acme/batch")  # costliest first
    assert series.cost == {("acme/batch", date(2026, 12, 10)): 1.5, ("acme/big", date(2026, 12, 11)): 2.0}
    assert series.total(date(2026, 12, 10)) == 1.5


def test_the_chart_draws_a_bar_part_per_endpoint_and_day_scaled_to_the_dearest_day():
    nights = [a_night(10, cost=1.0), a_night(10, cost=3.0, endpoint="big"), a_night(11, cost=2.0)]
    svg = cost_chart(cost_by_day(nights, end=date(2026, 12, 11), days=30))
    rects = re.findall(r'<rect x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"', svg)
    assert len(rects) == 3
    heights = sorted(float(h) for _, h in rects)
    plot = 280 - 12 - 40  # the chart's height less its margins
    assert heights[-1] == pytest.approx(
        plot * 3 / 5, abs=0.1
    )  # $3 on an axis topped at $5 (the day's $4, rounded up)
    assert heights[0] / heights[-1] == pytest.approx(1 / 3, rel=0.01)  # $1 beside $3
    assert "2026-12-10 acme/big: $3.00" in svg
    assert "$5.00" in svg
    assert "https://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched
    assert "<script" not in svg


def test_the_chart_groups_the_cheapest_endpoints_past_its_colours():
    nights = [a_night(10, cost=float(i + 1), endpoint=f"e{i}") for i in range(MAX_SERIES + 3)]
    svg = cost_chart(cost_by_day(nights, end=date(2026, 12, 10), days=30))
    assert "other endpoints (3)" in svg
    assert svg.count("<rect") == MAX_SERIES + 1


def test_an_empty_period_says_so():
    assert "No cost reported" in cost_chart(cost_by_day([], end=date(2026, 12, 10)))


def test_the_chart_escapes_names():
    night = a_night(10, cost=1.0, endpoint="<script>")
    assert "<script>" not in cost_chart(cost_by_day([night], end=date(2026, 12, 10)))


@pytest.mark.parametrize(
    ("connection", "dags", "editable", "allowed"),
    [
        (True, [], set(), True),  # a connection editor may act on any endpoint of it
        (False, [], {"a"}, False),  # no DAG runs it: only a connection editor
        (False, ["a", "b"], {"a"}, False),  # one DAG they may not edit
        (False, ["a", "b"], {"a", "b", "c"}, True),
    ],
)
def test_who_may_pause_and_resume(connection, dags, editable, allowed):
    assert may_edit(connection=connection, dags=dags, editable_dags=editable) is allowed


def test_an_endpoint_row_names_its_engine_hardware_price_and_console_page():
    raw = {
        "name": "batch",
        "status": {
            "state": "paused",
            "readyReplica": 0,
            "targetReplica": 0,
            "updatedAt": "2026-12-01T00:00:00Z",
            "createdAt": "2026-12-01T00:00:00Z",
            "message": "",
        },
        "model": {
            "repository": "org/model",
            "framework": "pytorch",
            "image": {"tei": {}},
            "task": "sentence-embeddings",
        },
        "compute": {
            "accelerator": "gpu",
            "instanceType": "nvidia-l4",
            "instanceSize": "x1",
            "scaling": {"minReplica": 0, "maxReplica": 2},
        },
        "provider": {"vendor": "aws", "region": "us-east-1"},
        "type": "protected",
        "accountId": None,
    }
    endpoint = InferenceEndpoint.from_raw(raw, namespace="acme")
    offer = HardwareOption(
        vendor="aws",
        region="us-east-1",
        id="x",
        accelerator="gpu",
        instance_type="nvidia-l4",
        instance_size="x1",
        architecture="L4",
        num_accelerators=1,
        memory_gb=16,
        gpu_memory_gb=24,
        price_per_hour=0.8,
        status="available",
    )
    row = row_of(endpoint, [offer])
    assert (row.state, row.paused, row.engine, row.price_per_hour) == ("paused", True, "TEI", 0.8)
    assert row.hardware == "aws/us-east-1 nvidia-l4 x1"
    assert row.replicas == "0/0 (0-2)"
    assert row.console_url == "https://endpoints.huggingface.co/acme/endpoints/batch"
    assert row_of(endpoint, []).price_per_hour is None


def test_the_listing_is_read_once_per_connection_within_its_ttl():
    now = [0.0]
    reads = []

    def read(conn_id):
        reads.append(conn_id)
        return Listing(endpoints=(), read_at=now[0])

    cache = ListingCache(read, ttl=20, clock=lambda: now[0])
    cache.get("a"), cache.get("a"), cache.get("b")
    assert reads == ["a", "b"]
    now[0] = 19.9
    cache.get("a")
    assert reads == ["a", "b"]
    now[0] = 20.0
    cache.get("a")
    assert reads == ["a", "b", "a"]
    cache.forget("a")
    cache.get("a")
    assert reads == ["a", "b", "a", "a"]


def test_a_failed_listing_is_read_again_at_the_next_load():
    reads = []

    def read(conn_id):
        reads.append(conn_id)
        return Listing(endpoints=(), read_at=0, error="ServerError: 503")

    cache = ListingCache(read, ttl=20, clock=lambda: 0.0)
    assert cache.get("a").error == "ServerError: 503"
    cache.get("a")
    assert reads == ["a", "a"]


@pytest.mark.parametrize(
    ("amount", "written"), [(0, "$0.00"), (0.8, "$0.80"), (1234.5, "$1,234.50"), (0.0077, "$0.0077")]
)
def test_dollars_are_written_in_cents_or_below_a_cent_in_hundredths(amount, written):
    assert usd(amount) == written


def test_a_window_over_several_endpoints_is_a_night_for_each():
    report = {
        "endpoints": {
            f"demo/{name}": {
                "billable_seconds": 60.0,
                "estimated_cost_usd": cost,
                "summary": f"{name} ran",
                "endpoint": name,
                "namespace": "demo",
                "hf_conn_id": "hf",
            }
            for name, cost in (("embedder", 0.5), ("generator", 1.5))
        },
        "estimated_cost_usd": 2.0,
        "summary": "2 endpoints, $2.0000 in all",
    }
    nights = nights_of(
        dag_id="d",
        run_id="r",
        run_after=datetime(2026, 12, 1, tzinfo=UTC),
        run_state="success",
        task_id="endpoint_window.cost_report",
        value=json.dumps(report),
    )
    assert [(n.key, n.cost, n.group) for n in nights] == [
        ("demo/embedder", 0.5, "endpoint_window"),
        ("demo/generator", 1.5, "endpoint_window"),
    ]
    single = nights_of(
        dag_id="d",
        run_id="r",
        run_after=datetime(2026, 12, 1, tzinfo=UTC),
        run_state="success",
        task_id="endpoint_window.cost_report",
        value=report["endpoints"]["demo/embedder"],
    )
    assert [n.key for n in single] == ["demo/embedder"]
