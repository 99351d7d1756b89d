from __future__ import annotations

import pytest

from airflow_provider_hfep.endpoints import EndpointSpec, EndpointUpdate, InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.payloads import validate_endpoint_name, validate_task

from tests.conftest import make_spec

MINIMAL = dict(
    name="my-ep",
    repository="gpt2",
    framework="pytorch",
    accelerator="cpu",
    instance_size="x2",
    instance_type="intel-spr",
    region="us-east-1",
    vendor="aws",
)


def test_minimal_create_body_is_the_probe_body():
    # Reference 1.4: the exact body huggingface_hub 2.4.0 sent for the minimal call.
    assert EndpointSpec(**MINIMAL).to_body() == {
        "compute": {
            "accelerator": "cpu",
            "instanceSize": "x2",
            "instanceType": "intel-spr",
            "scaling": {"maxReplica": 1, "minReplica": 1, "scaleToZeroTimeout": None},
        },
        "model": {
            "framework": "pytorch",
            "repository": "gpt2",
            "revision": None,
            "image": {"huggingface": {}},
        },
        "name": "my-ep",
        "provider": {"region": "us-east-1", "vendor": "aws"},
        "type": "authenticated",
    }


def test_create_body_conditional_keys():
    body = EndpointSpec(
        **MINIMAL,
        task="text-generation",
        scaling_metric="pendingRequests",
        scaling_threshold=2,
        min_replica=0,
        scale_to_zero_timeout=15,
        env={"A": "1"},
        secrets={},
        path="/m",
        tags=[],
        cache_http_responses=True,
    ).to_body()
    assert body["model"]["task"] == "text-generation"
    assert body["compute"]["scaling"]["measure"] == {"pendingRequests": 2}
    assert body["model"]["env"] == {"A": "1"}
    assert "secrets" not in body["model"]
    assert body["route"] == {"path": "/m"}
    assert body["tags"] == []
    assert body["experimentalFeatures"] == {"cacheHttpResponses": True}  # where the 2026 API keeps it
    assert "cacheHttpResponses" not in body
    assert (
        "task" not in EndpointSpec(**MINIMAL).to_body()["model"]
    )  # omitted when None (null is refused live)


def test_custom_image_normalisation():
    flat = {"url": "ghcr.io/huggingface/text-generation-inference:1.1.0", "healthRoute": "/health"}
    assert EndpointSpec(**MINIMAL, custom_image=flat).to_body()["model"]["image"] == {"custom": flat}
    variant = {"vLLM": {"url": "vllm/vllm-openai:v0.11.0", "port": 8000}}
    assert EndpointSpec(**MINIMAL, custom_image=variant).to_body()["model"]["image"] == variant
    with_credentials = EndpointSpec(
        **MINIMAL, custom_image=flat, container_registry_username="u", container_registry_password="p"
    )
    assert with_credentials.to_body()["model"]["image"]["custom"]["credentials"] == {
        "username": "u",
        "password": "p",
    }


def test_update_body_is_the_probe_body():
    # Reference 1.5: update(min_replica=0, scale_to_zero_timeout=30, env={}, tags=["a"]).
    body = EndpointUpdate(min_replica=0, scale_to_zero_timeout=30, env={}, tags=["a"]).to_body()
    assert body == {
        "compute": {"scaling": {"minReplica": 0, "scaleToZeroTimeout": 30}},
        "model": {"env": {}},
        "tags": ["a"],
    }


def test_secrets_never_in_repr():
    spec = EndpointSpec(
        **MINIMAL,
        secrets={"K": "s3cr3t"},
        custom_image={"url": "x"},
        container_registry_username="u",
        container_registry_password="pw",
    )
    assert "s3cr3t" not in repr(spec)
    assert "pw" not in repr(spec)
    assert "s3cr3t" not in repr(EndpointUpdate(secrets={"K": "s3cr3t"}))


BAD_SPECS = [
    ({"name": "My_Endpoint"}, "name", "lowercase"),
    ({"name": "-leading"}, "name", "starting and ending"),
    ({"name": "x" * 33}, "name", "32"),
    ({"name": ""}, "name", "lowercase"),
    ({"repository": ""}, "repository", "set repository"),
    ({"accelerator": ""}, "accelerator", "'gpu'"),
    ({"min_replica": 3, "max_replica": 2}, "min_replica", "min_replica <= max_replica"),
    ({"max_replica": 0, "min_replica": 0}, "max_replica", "1 or more"),
    ({"min_replica": -1}, "min_replica", ">= 0"),
    ({"min_replica": "1"}, "min_replica", "integer"),
    ({"scale_to_zero_timeout": 15}, "scale_to_zero_timeout", "min_replica=0"),
    ({"scale_to_zero_timeout": 0, "min_replica": 0}, "scale_to_zero_timeout", "minutes"),
    ({"type": "protected"}, "type", "authenticated"),
    ({"type": "secret"}, "type", "public, authenticated, private"),
    ({"path": "models/x"}, "path", "start with '/'"),
    ({"task": ""}, "task", "'text-generation'"),
    ({"scaling_metric": "cpu"}, "scaling_metric", "pendingRequests"),
    ({"custom_image": {"health_route": "/health", "url": "x"}}, "custom_image", "healthRoute"),
    ({"custom_image": {"vLLM": {"port": 8000}}}, "custom_image", "url"),
    ({"custom_image": {"tgi": {"url": "x"}, "tei": {"url": "y"}}}, "custom_image", "one variant"),
    ({"env": {"A": 1}}, "env", "string values"),
    ({"container_args": "--port 80"}, "container_args", "list of strings"),
    ({"container_registry_password": "p"}, "container_registry_password", "username"),
    ({"container_registry_username": "u"}, "container_registry_username", "custom_image"),
    ({"private_link_shared": True}, "private_link_shared", "account id"),
]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"accelerator": "tpu"}, "accelerator"),
        ({"task": "text-generaton"}, "task"),
        ({"custom_image": {"tgiNext": {"url": "ghcr.io/x"}}}, "custom_image"),
    ],
)
def test_values_the_service_defines_pass_with_a_warning(overrides, field, caplog):
    """Hugging Face adds accelerators, engines and tasks: the service judges them, not this package."""
    body = make_spec(**overrides).to_body()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith(f"{field}: ") and "sending it as is" in m for m in warned), warned
    assert body  # built and sendable


def test_private_service_has_the_2026_shape():
    body = make_spec(private_link_account_id="123456789012", private_link_shared=True).to_body()
    assert body["privateService"] == {"accountId": "123456789012", "shared": True}


@pytest.mark.parametrize(
    ("overrides", "field", "fix"), BAD_SPECS, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD_SPECS)]
)
def test_bad_spec_is_refused_naming_field_and_fix(overrides, field, fix):
    with pytest.raises(InvalidEndpointArgumentError) as info:
        EndpointSpec(**{**MINIMAL, **overrides})
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert fix in str(info.value)
    assert isinstance(info.value, ValueError)


def test_empty_or_bad_update_is_refused():
    with pytest.raises(InvalidEndpointArgumentError, match="nothing to change"):
        EndpointUpdate()
    with pytest.raises(InvalidEndpointArgumentError, match="min_replica"):
        EndpointUpdate(min_replica=5, max_replica=1)


def test_name_and_task_validators_accept_good_values():
    assert validate_endpoint_name("a") == "a"
    assert validate_endpoint_name("batch-endpoint-01") == "batch-endpoint-01"
    assert validate_endpoint_name("x" * 32) == "x" * 32
    assert validate_task("feature-extraction") == "feature-extraction"
