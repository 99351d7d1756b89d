"""Hardware choices and windows over several endpoints: bad arguments are refused when the DAG is parsed."""

from __future__ import annotations

import re

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFaceEndpointsReadyOperator,
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
)
from airflow_provider_hfep.window import endpoint_window

from tests.specs import GPU_ENDPOINT

WHERE = {"vendor": "aws", "region": "us-east-1"}
A100 = {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"}
L4 = {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x1"}
ELSEWHERE = {**L4, "region": "eu-west-1"}


@pytest.fixture
def dag():
    with DAG("parse", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as parsed:
        yield parsed


def refused(field: str):
    return pytest.raises(InvalidEndpointArgumentError, match=f"^{re.escape(field)}:")


def test_the_resume_refuses_choices_in_two_regions(dag):
    with refused("hardware[1].region"):
        HuggingFaceResumeEndpointOperator(task_id="r", endpoint_name="e", hardware=[A100, ELSEWHERE])


def test_the_resume_refuses_a_capacity_timeout_that_is_not_seconds(dag):
    with refused("capacity_timeout"):
        HuggingFaceResumeEndpointOperator(task_id="r", endpoint_name="e", hardware=[A100], capacity_timeout=0)


def test_the_create_counts_its_own_hardware_as_the_first_choice(dag):
    create = HuggingFaceCreateEndpointOperator(
        task_id="c", endpoint_name="e", **GPU_ENDPOINT, hardware=[A100, {**L4, "accelerator": "gpu"}]
    )
    assert [c.instance_type for c in create.choices] == ["nvidia-l4", "nvidia-a100"]  # its own L4 once
    with refused("hardware[1].region"):
        HuggingFaceCreateEndpointOperator(
            task_id="c2", endpoint_name="e", **GPU_ENDPOINT, hardware=[ELSEWHERE]
        )
    with refused("if_exists"):
        HuggingFaceCreateEndpointOperator(
            task_id="c3", endpoint_name="e", **GPU_ENDPOINT, hardware=[A100], if_exists="update"
        )


def test_the_close_refuses_bad_hardware_to_restore(dag):
    with refused("restore_hardware[0].instance_size"):
        HuggingFacePauseEndpointOperator(
            task_id="p", endpoint_name="e", restore_hardware={**A100, "instance_size": "big"}
        )


@pytest.mark.parametrize(
    ("endpoints", "field"),
    [
        ([], "endpoints"),
        ("embedder", "endpoints"),
        (["embedder", "embedder"], "endpoints[1]"),
        (["Not_A_Name"], "endpoints[0].endpoint_name"),
        ([{"name": "e", "hardwear": [A100]}], "endpoints[0].hardwear"),
        ([{"name": "e", "hardware": [A100, ELSEWHERE]}], "endpoints[0].hardware[1].region"),
    ],
)
def test_the_ready_task_refuses_bad_endpoints_naming_the_field(dag, endpoints, field):
    with refused(field):
        HuggingFaceEndpointsReadyOperator(task_id="ready", endpoints=endpoints)


def test_a_window_refuses_choices_in_two_regions(dag):
    with refused("hardware[1].region"), endpoint_window("e", hardware=[A100, ELSEWHERE]):
        pass


def test_a_window_over_several_endpoints_takes_hardware_per_endpoint_and_no_caps(dag):
    with refused("hardware"), endpoint_window(["a", "b"], hardware=[A100]):
        pass
    with refused("max_cost"), endpoint_window(["a", "b"], max_cost=5):
        pass


def test_a_window_over_three_endpoints_resumes_them_side_by_side_and_closes_each(dag):
    with endpoint_window(["embedder", "reranker", {"name": "generator", "hardware": [A100, L4]}]) as group:
        pass
    tasks = {task_id.split(".", 1)[1]: task for task_id, task in group.children.items()}
    resumes = [tasks[f"resume_{n}"] for n in ("embedder", "reranker", "generator")]
    closes = [tasks[f"pause_{n}"] for n in ("embedder", "reranker", "generator")]
    ready = tasks["ready"]
    assert all(r.is_setup and r.downstream_task_ids == {ready.task_id} for r in resumes)
    assert all(c.is_teardown for c in closes)
    assert ready.downstream_task_ids == {c.task_id for c in closes}
    assert tasks["resume_generator"].choices is not None
    assert closes[2].restore_hardware.instance_type == "nvidia-a100"  # back on the first choice
    assert closes[0].restore_hardware is None
    with endpoint_window("solo", hardware=[A100, L4], hardware_sticky=True, group_id="sticky") as sticky:
        pass
    assert sticky.children["sticky.pause"].restore_hardware is None  # sticky: it stays where it ended


def test_the_report_of_several_endpoints_adds_up_and_says_when_a_price_is_unknown():
    from airflow_provider_hfep.window.task_group import total_report

    priced = {
        "demo/a": {"estimated_cost_usd": 0.25, "replica_seconds": 100.0, "summary": "a"},
        "demo/b": {"estimated_cost_usd": 0.5, "replica_seconds": 50.0, "summary": "b"},
    }
    total = total_report(priced)
    assert total["estimated_cost_usd"] == 0.75
    assert total["replica_seconds"] == 150.0
    assert total["endpoints"] == priced
    assert total["summary"].startswith("2 endpoints, $0.7500 in all: demo/a: a demo/b: b")
    unknown = total_report(
        {**priced, "demo/c": {"estimated_cost_usd": None, "replica_seconds": None, "summary": "c"}}
    )
    assert unknown["estimated_cost_usd"] is None
    assert "unknown in all" in unknown["summary"]
