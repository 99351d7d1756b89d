"""The judge: the real huggingface_hub client drives the emulator through every step of the seed guide.
If the emulator answered in a shape the real client cannot read, this fails. It runs with the lock's
1.33 (on httpx) in `make test`, and with 2.4 (on httpx2) in `make compat` (`make compat-hub2`)."""

from __future__ import annotations

import pytest
from huggingface_hub.errors import HfHubHTTPError, InferenceEndpointError

from tests.specs import CPU_ENDPOINT

pytestmark = [pytest.mark.integration, pytest.mark.huggingface_hub]

TGI_IMAGE = {
    "healthRoute": "/health",
    "env": {
        "MAX_BATCH_PREFILL_TOKENS": "2048",
        "MAX_INPUT_LENGTH": "1024",
        "MAX_TOTAL_TOKENS": "1512",
        "MODEL_ID": "/repository",
    },
    "url": "ghcr.io/huggingface/text-generation-inference:1.1.0",
}


def test_seed_guide_end_to_end(hub, cloud):
    token = cloud.token
    # create (authenticated replaces the guide's legacy "protected")
    endpoint = hub.create_inference_endpoint(
        "my-endpoint-name",
        repository="gpt2",
        framework="pytorch",
        task="text-generation",
        accelerator="cpu",
        vendor="aws",
        region="us-east-1",
        type="authenticated",
        instance_size="x2",
        instance_type="intel-spr",
        token=token,
    )
    assert (endpoint.name, endpoint.namespace, endpoint.repository, endpoint.status, endpoint.url) == (
        "my-endpoint-name",
        "demo",
        "gpt2",
        "pending",
        None,
    )
    # create with a TGI custom image (the zephyr example)
    zephyr = hub.create_inference_endpoint(
        "aws-zephyr-7b-beta-0486",
        repository="HuggingFaceH4/zephyr-7b-beta",
        framework="pytorch",
        task="text-generation",
        accelerator="gpu",
        vendor="aws",
        region="us-east-1",
        type="authenticated",
        instance_size="x1",
        instance_type="nvidia-l4",
        custom_image=TGI_IMAGE,
        token=token,
    )
    assert zephyr.raw["model"]["image"] == {"custom": TGI_IMAGE}
    assert zephyr.health_route == "/health"

    # get, list (one namespace, and "*")
    assert hub.get_inference_endpoint("my-endpoint-name", token=token).repository == "gpt2"
    assert {e.name for e in hub.list_inference_endpoints(namespace="demo", token=token)} == {
        "my-endpoint-name",
        "aws-zephyr-7b-beta-0486",
    }
    assert len(hub.list_inference_endpoints(namespace="*", token=token)) == 2

    # wait (running + health 200), fetch, and inference through the real InferenceClient
    endpoint = endpoint.wait(timeout=30, refresh_every=0.1)
    assert endpoint.status == "running"
    assert endpoint.url == cloud.endpoint_url("my-endpoint-name")
    assert endpoint.fetch().status == "running"
    text = endpoint.client.text_generation("I am")
    assert isinstance(text, str)
    assert text.strip()
    assert endpoint.client.text_generation("I am") == text  # deterministic
    chat = zephyr.wait(timeout=30, refresh_every=0.1).client.chat_completion(
        [{"role": "user", "content": "Hello"}], max_tokens=5
    )
    assert chat.choices[0].message.content

    # pause: url gone; resume: pending, then running again
    paused = endpoint.pause()
    assert (paused.status, paused.url) == ("paused", None)
    with pytest.raises(InferenceEndpointError):
        paused.client  # huggingface_hub refuses a client without URL
    assert endpoint.resume().status == "pending"
    assert endpoint.wait(timeout=30, refresh_every=0.1).status == "running"
    assert endpoint.resume().status == "running"  # running_ok: the 400 "already running" is absorbed

    # scale to zero: url kept; the first call wakes it
    scaled = endpoint.scale_to_zero()
    assert (scaled.status, scaled.url) == ("scaledToZero", cloud.endpoint_url("my-endpoint-name"))

    # update: partial body, deep merge, passes through updating
    hub.resume_inference_endpoint("my-endpoint-name", token=token)
    endpoint.wait(timeout=30, refresh_every=0.1)
    updated = endpoint.update(repository="gpt2-large", min_replica=0, max_replica=2)
    assert updated.repository == "gpt2-large"
    assert updated.raw["compute"]["scaling"]["maxReplica"] == 2
    assert updated.raw["compute"]["instanceType"] == "intel-spr"  # untouched keys survive the merge
    updated.wait(timeout=30, refresh_every=0.1)

    # hardware listing parses with huggingface_hub's strict from_raw
    hardware = hub.list_inference_endpoints_hardware(namespace="demo", token=token)
    assert any(h.instance_type == "nvidia-l4" and h.price_per_hour > 0 for h in hardware)

    # delete, then a get is a 404
    endpoint.delete()
    with pytest.raises(HfHubHTTPError) as info:
        hub.get_inference_endpoint("my-endpoint-name", token=token)
    assert info.value.response.status_code == 404
    zephyr.delete()


def test_wait_raises_on_failed_like_the_real_service(hub, cloud):
    endpoint = hub.create_inference_endpoint(
        "doomed",
        **CPU_ENDPOINT,
        token=cloud.token,
    )
    cloud.set_state("doomed", "failed", "Container crashed")
    with pytest.raises(InferenceEndpointError, match="failed to deploy"):
        endpoint.wait(timeout=10, refresh_every=0.1)


def test_error_statuses_and_messages_reach_the_real_client(hub, cloud):
    hub.create_inference_endpoint(
        "dup",
        **CPU_ENDPOINT,
        token=cloud.token,
    )
    with pytest.raises(HfHubHTTPError) as conflict:
        hub.create_inference_endpoint(
            "dup",
            **CPU_ENDPOINT,
            token=cloud.token,
        )
    assert conflict.value.response.status_code == 409
    assert conflict.value.server_message == "Endpoint name already exists"
    with pytest.raises(HfHubHTTPError) as unauthorized:
        hub.get_inference_endpoint("dup", namespace="demo", token="hf_wrong")
    assert unauthorized.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as forbidden:
        hub.get_inference_endpoint("dup", namespace="someone-else", token=cloud.token)
    assert forbidden.value.response.status_code == 403
    cloud.set_state("dup", "running")
    with pytest.raises(HfHubHTTPError, match="already running") as bad:
        hub.resume_inference_endpoint("dup", running_ok=False, token=cloud.token)
    assert bad.value.response.status_code == 400
