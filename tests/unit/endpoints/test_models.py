from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from airflow_provider_hfep.endpoints.models import (
    EndpointStatus,
    HardwareOption,
    InferenceEndpoint,
    LogLine,
    Replica,
    log_records,
    parse_timestamp,
)

# The reference's full realistic object (MOCK_RUNNING merged with the catalog mock), plus secrets.
RAW_RUNNING = {
    "name": "my-endpoint-name",
    "type": "authenticated",
    "accountId": None,
    "provider": {"vendor": "aws", "region": "us-east-1"},
    "healthRoute": "/health",
    "compute": {
        "accelerator": "gpu",
        "id": "aws-us-east-1-nvidia-l4-x1",
        "instanceType": "nvidia-l4",
        "instanceSize": "x1",
        "scaling": {
            "minReplica": 0,
            "maxReplica": 1,
            "scaleToZeroTimeout": 15,
            "measure": {"hardwareUsage": None},
            "metric": "hardwareUsage",
        },
    },
    "model": {
        "repository": "gpt2",
        "revision": "11c5a3d5811f50298f278a704980280950aedb10",
        "task": "text-generation",
        "framework": "pytorch",
        "image": {"custom": {"url": "r/x:1", "credentials": {"username": "me", "password": "pw"}}},
        "env": {},
        "secrets": {"API_KEY": "s3cr3t"},
    },
    "status": {
        "createdAt": "2023-10-26T12:41:53.263Z",
        "createdBy": {"id": "6273f303f6d63a28483fde12", "name": "Wauplin"},
        "updatedAt": "2023-10-26T12:41:53.263078506Z",
        "updatedBy": {"id": "6273f303f6d63a28483fde12", "name": "Wauplin"},
        "private": None,
        "state": "running",
        "message": "Endpoint is ready",
        "url": "https://vksrvs8pc1xnifhq.us-east-1.aws.endpoints.huggingface.cloud",
        "readyReplica": 1,
        "targetReplica": 1,
    },
}


def test_from_raw_reads_every_field():
    endpoint = InferenceEndpoint.from_raw(RAW_RUNNING, namespace="Wauplin")
    assert endpoint.name == "my-endpoint-name"
    assert endpoint.namespace == "Wauplin"
    assert endpoint.repository == "gpt2"
    assert endpoint.status is EndpointStatus.RUNNING
    assert endpoint.status == "running"
    assert endpoint.url == "https://vksrvs8pc1xnifhq.us-east-1.aws.endpoints.huggingface.cloud"
    assert (endpoint.framework, endpoint.task, endpoint.type) == (
        "pytorch",
        "text-generation",
        "authenticated",
    )
    assert endpoint.revision == "11c5a3d5811f50298f278a704980280950aedb10"
    assert endpoint.health_url == "https://vksrvs8pc1xnifhq.us-east-1.aws.endpoints.huggingface.cloud/health"
    assert endpoint.message == "Endpoint is ready"
    assert endpoint.created_at == datetime(2023, 10, 26, 12, 41, 53, 263000, tzinfo=UTC)
    assert endpoint.updated_at == datetime(2023, 10, 26, 12, 41, 53, 263078, tzinfo=UTC)
    assert endpoint.raw is RAW_RUNNING


def test_paused_endpoint_has_no_url_and_unknown_states_are_kept():
    raw = json.loads(json.dumps(RAW_RUNNING))
    raw["status"]["state"] = "paused"
    del raw["status"]["url"]
    assert InferenceEndpoint.from_raw(raw, "ns").url is None
    assert InferenceEndpoint.from_raw(raw, "ns").health_url is None
    raw["status"]["state"] = "migrating"
    assert InferenceEndpoint.from_raw(raw, "ns").status == "migrating"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-10-26T12:41:53Z", datetime(2023, 10, 26, 12, 41, 53, tzinfo=UTC)),
        ("2023-10-26T12:41:53.2Z", datetime(2023, 10, 26, 12, 41, 53, 200000, tzinfo=UTC)),
        ("2023-10-26T12:41:53.263078506Z", datetime(2023, 10, 26, 12, 41, 53, 263078, tzinfo=UTC)),
        ("2023-10-26T12:41:53+00:00", datetime(2023, 10, 26, 12, 41, 53, tzinfo=UTC)),
    ],
)
def test_parse_timestamp_gives_aware_utc(text, expected):
    assert parse_timestamp(text) == expected


def test_to_dict_is_json_safe_and_hides_secret_values():
    data = InferenceEndpoint.from_raw(RAW_RUNNING, "Wauplin").to_dict()
    round_tripped = json.loads(json.dumps(data))
    assert round_tripped == data
    assert data["status"] == "running"
    assert data["created_at"] == "2023-10-26T12:41:53.263000+00:00"
    text = json.dumps(data)
    assert "s3cr3t" not in text
    assert '"pw"' not in text
    assert data["raw"]["model"]["secrets"] == {"API_KEY": "***"}
    assert RAW_RUNNING["model"]["secrets"] == {"API_KEY": "s3cr3t"}  # the original is untouched


def test_hardware_listing_is_flattened():
    raw = {
        "vendors": [
            {
                "name": "aws",
                "status": "available",
                "regions": [
                    {
                        "name": "us-east-1",
                        "label": "N. Virginia",
                        "status": "available",
                        "computes": [
                            {
                                "id": "aws-us-east-1-nvidia-l4-x1",
                                "accelerator": "gpu",
                                "numAccelerators": 1,
                                "numCpus": 7,
                                "memoryGb": 30.0,
                                "gpuMemoryGb": 24,
                                "instanceType": "nvidia-l4",
                                "instanceSize": "x1",
                                "architecture": "Nvidia L4",
                                "status": "available",
                                "pricePerHour": 0.8,
                                "quota": {"maxAccelerators": 16, "usedAccelerators": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    [option] = HardwareOption.list_from_raw(raw)
    assert (option.vendor, option.region, option.instance_type, option.instance_size) == (
        "aws",
        "us-east-1",
        "nvidia-l4",
        "x1",
    )
    assert option.price_per_hour == 0.8
    assert option.gpu_memory_gb == 24


@pytest.mark.parametrize(
    "answer",
    [
        [{"live": True, "stage": "running", "updating": False}],
        {"replicas": [{"live": True, "stage": "running", "updating": False}]},
        {"status": [{"live": True, "stage": "running", "updating": False}], "count": 1},
    ],
    ids=["bare-list", "replicas", "another-name"],
)
def test_replicas_are_read_from_whatever_wrapper_holds_the_one_list(answer):
    (replica,) = Replica.list_from_raw(answer)
    assert (replica.id, replica.stage, replica.live) == ("replica-0", "running", True)


def test_an_answer_without_a_list_is_logged_not_silently_empty(caplog):
    assert Replica.list_from_raw({"count": 0, "note": "odd"}) == []
    assert "has no list" in caplog.text


@pytest.mark.parametrize(
    ("text", "messages"),
    [
        ('{"logs": [{"message": "a"}, {"message": "b"}]}', ["a", "b"]),
        ('{"entries": [{"message": "a"}]}', ["a"]),
        ('{"message": "a"}\n{"message": "b"}\n', ["a", "b"]),  # JSON lines
        ('{"message": "a"}\nplain text\n', ["a", "plain text"]),
    ],
    ids=["wrapped", "other-wrapper", "json-lines", "mixed"],
)
def test_v3_log_answers_are_read_whatever_their_shape(text, messages):
    assert [LogLine.from_record(r).message for r in log_records(text)] == messages


def test_the_dns_prefix_is_the_first_label_of_the_url_host_else_the_name():
    raw = copy.deepcopy(RAW_RUNNING)
    raw["status"]["url"] = "https://a1b2c3.us-east-1.aws.endpoints.huggingface.cloud"
    assert InferenceEndpoint.from_raw(raw, "ns").dns_prefix == "a1b2c3"
    raw["status"]["url"] = "http://127.0.0.1:8080/e/x"
    assert InferenceEndpoint.from_raw(raw, "ns").dns_prefix == raw["name"]
