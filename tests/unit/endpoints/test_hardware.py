"""Hardware choices: read and refused at parse time, naming the field; what counts as "no capacity"."""

from __future__ import annotations

import pytest

from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.hardware import (
    HardwareChoice,
    index_of,
    is_capacity_message,
    parse_hardware,
    tried_summary,
)
from airflow_provider_hfep.endpoints.models import InferenceEndpoint

from tests.unit.endpoints.test_models import RAW_RUNNING

WHERE = {"vendor": "aws", "region": "us-east-1"}
A100 = {**WHERE, "instance_type": "nvidia-a100", "instance_size": "x1"}
L4 = {**WHERE, "instance_type": "nvidia-l4", "instance_size": "x4", "accelerator": "gpu"}


def test_choices_are_read_in_order_with_the_accelerator_where_given():
    first, second = parse_hardware([A100, L4])
    assert first == HardwareChoice("aws", "us-east-1", "nvidia-a100", "x1")
    assert second.accelerator == "gpu"
    assert second.label == "nvidia-l4 x4 in aws/us-east-1"
    assert second.to_json() == L4
    assert first.update().to_body() == {"compute": {"instanceType": "nvidia-a100", "instanceSize": "x1"}}


@pytest.mark.parametrize(
    ("hardware", "field"),
    [
        ("nvidia-a100", "hardware"),
        (A100, "hardware"),
        ([], "hardware"),
        (["nvidia-a100"], "hardware[0]"),
        ([{**A100, "instance_sise": "x1"}], "hardware[0].instance_sise"),
        ([{k: v for k, v in A100.items() if k != "instance_type"}], "hardware[0].instance_type"),
        ([A100, {**L4, "instance_size": "4"}], "hardware[1].instance_size"),
        ([A100, {**L4, "instance_type": ""}], "hardware[1].instance_type"),
        ([A100, {**L4, "accelerator": 3}], "hardware[1].accelerator"),
        ([A100, {**L4, "region": "eu-west-1"}], "hardware[1].region"),
        ([A100, {**L4, "vendor": "gcp"}], "hardware[1].vendor"),
        ([A100, L4, A100], "hardware[2]"),
    ],
)
def test_bad_choices_are_refused_naming_the_field(hardware, field):
    with pytest.raises(InvalidEndpointArgumentError) as refused:
        parse_hardware(hardware)
    assert refused.value.field == field
    assert refused.value.fix


def test_another_region_is_refused_saying_why_an_update_cannot_move_there():
    with pytest.raises(InvalidEndpointArgumentError, match="provider is fixed at creation"):
        parse_hardware([A100, {**L4, "region": "eu-west-1"}])


def test_the_choice_an_endpoint_is_on_is_found_by_its_hardware():
    endpoint = InferenceEndpoint.from_raw(RAW_RUNNING, namespace="ns")
    choices = parse_hardware(
        [A100, {**WHERE, "instance_type": endpoint.instance_type, "instance_size": endpoint.instance_size}]
    )
    assert index_of(choices, endpoint) == 1
    assert index_of(choices[:1], endpoint) is None


@pytest.mark.parametrize(
    ("message", "capacity"),
    [
        ("Endpoint waiting to be scheduled: insufficient capacity for nvidia-a100 x1", True),
        ("Insufficient capacity: nvidia-a100 x1 in aws/us-east-1 is not available now", True),
        ("Quota exceeded: 4 of 4 nvidia-l4 accelerators in aws are in use", True),
        ("Out of GPU capacity", True),
        ("CUDA error: out of memory", False),
        ("", False),
        (None, False),
    ],
)
def test_what_counts_as_the_service_lacking_capacity(message, capacity):
    assert is_capacity_message(message) is capacity


def test_what_was_tried_is_said_in_one_line():
    tried = [
        {"choice": 1, "hardware": "nvidia-a100 x1 in aws/us-east-1", "reason": "not_available"},
        {"choice": 2, "hardware": "nvidia-l4 x1 in aws/us-east-1", "reason": "still pending"},
    ]
    assert tried_summary(tried) == (
        "1. nvidia-a100 x1 in aws/us-east-1: not_available; 2. nvidia-l4 x1 in aws/us-east-1: still pending"
    )
