"""For the same arguments, our client sends byte-for-byte the JSON huggingface_hub sends, but where the
2026 contract says otherwise (then it sends what the contract says).

Both clients talk to the emulator; both bodies are read back from its request log, so this compares
what really went over the wire, not what either side believes it built."""

from __future__ import annotations

import copy

import pytest

from airflow_provider_hfep.endpoints import EndpointSpec, EndpointUpdate

from tests.specs import CPU_ENDPOINT


def as_the_2026_contract_says(body: dict) -> dict:
    """huggingface_hub's body (1.33 or 2.4), corrected where it and the 2026 contract disagree."""
    body = copy.deepcopy(body)
    if "cacheHttpResponses" in body:  # the contract keeps it under experimentalFeatures
        body.setdefault("experimentalFeatures", {})["cacheHttpResponses"] = body.pop("cacheHttpResponses")
    if "privateService" in body:  # EndpointPrivateService is {accountId, shared}: no region
        body["privateService"].pop("region", None)
    return body


pytestmark = [pytest.mark.integration, pytest.mark.huggingface_hub]

BASE = CPU_ENDPOINT

CREATE_CASES = {
    "minimal": {},
    "task": {"task": "text-generation"},
    "tgi-flat-image": {
        "custom_image": {
            "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
            "healthRoute": "/health",
            "port": 80,
        }
    },
    "variant-image": {
        "custom_image": {
            "tgi": {
                "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
                "healthRoute": "/health",
                "port": 80,
                "disableCustomKernels": False,
            }
        }
    },
    "scaling": {
        "min_replica": 0,
        "max_replica": 4,
        "scale_to_zero_timeout": 15,
        "scaling_metric": "pendingRequests",
        "scaling_threshold": 2.0,
    },
    "env-secrets": {"env": {"MAX_INPUT_LENGTH": "1024"}, "secrets": {"API_KEY": "s3cr3t"}},
    "empty-env-not-sent": {"env": {}, "secrets": {}},
    "container": {
        "custom_image": {"url": "vllm/vllm-openai:v0.11.0", "port": 8000},
        "container_command": ["python", "-m", "serve"],
        "container_args": ["--max-model-len", "4096"],
    },
    "route-and-tags": {
        "domain": "models.example.com",
        "path": "/v1/gpt2",
        "cache_http_responses": False,
        "tags": ["nightly", "batch"],
        "type": "public",
        "revision": "11c5a3d5",
    },
    "registry-credentials": {
        "custom_image": {"url": "registry.example.com/me/server:1"},
        "container_registry_username": "me",
        "container_registry_password": "pw",
    },
    "private-link": {
        "private_link_account_id": "123456789012",
        "private_link_region": "eu-west-1",
        "type": "private",
    },
}

UPDATE_CASES = {
    "probe": {"min_replica": 0, "scale_to_zero_timeout": 30, "env": {}, "tags": ["a"]},
    "hardware": {"accelerator": "gpu", "instance_size": "x1", "instance_type": "nvidia-l4"},
    "model": {
        "repository": "gpt2-large",
        "revision": "abc",
        "task": "text-generation",
        "framework": "pytorch",
    },
    "image": {"custom_image": {"url": "ghcr.io/huggingface/text-generation-inference:3.2.0"}},
    "metric": {"scaling_metric": "hardwareUsage", "scaling_threshold": 80.0, "max_replica": 3},
    "route": {
        "path": "/v2/model",
        "domain": "x.example.com",
        "cache_http_responses": True,
        "secrets": {"K": "v"},
    },
    "container": {"container_command": ["serve"], "container_args": ["--port", "80"]},
}


def _last_body(cloud, method: str) -> dict:
    return [r for r in cloud.requests("management") if r["method"] == method][-1]["json"]


@pytest.mark.parametrize("case", sorted(CREATE_CASES))
def test_create_body_equals_huggingface_hub(case, hub, client, cloud):
    arguments = {**BASE, **CREATE_CASES[case]}
    hub.create_inference_endpoint("parity-hub", namespace="demo", token=cloud.token, **arguments)
    theirs = as_the_2026_contract_says(_last_body(cloud, "POST"))
    ours_arguments = {k: v for k, v in arguments.items() if k != "private_link_region"}
    client.create(EndpointSpec(name="parity-ours", **ours_arguments), namespace="demo")
    ours = _last_body(cloud, "POST")
    assert theirs["name"] == "parity-hub"
    assert ours["name"] == "parity-ours"
    assert {**ours, "name": None} == {**theirs, "name": None}


@pytest.mark.parametrize("case", sorted(UPDATE_CASES))
def test_update_body_equals_huggingface_hub(case, hub, client, cloud):
    cloud.seed_endpoint("parity")
    hub.update_inference_endpoint("parity", namespace="demo", token=cloud.token, **UPDATE_CASES[case])
    theirs = as_the_2026_contract_says(_last_body(cloud, "PUT"))
    client.update("parity", EndpointUpdate(**UPDATE_CASES[case]), namespace="demo")
    ours = _last_body(cloud, "PUT")
    assert ours == theirs
