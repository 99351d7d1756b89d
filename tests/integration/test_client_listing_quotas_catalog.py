"""
Listing, capacity and the catalog through our client (sync and async) against the emulator: every page
of a listing (of one namespace and of all), the quota read and checked before any change, the hardware
offers, the catalog's models deployed by repository or recipe, and the fields endpoints carry since the
2026 API. Requests are counted in the emulator's log.
"""

from __future__ import annotations

import huggingface_hub
import pytest

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.endpoints import (
    CapacityError,
    EndpointSpec,
    InvalidEndpointArgumentError,
    NotFoundError,
)

from tests.specs import CPU_ENDPOINT

pytestmark = pytest.mark.integration


def listing_requests(cloud, namespace: str = "demo") -> list[dict]:
    return [
        r
        for r in cloud.requests("management")
        if r["method"] == "GET" and r["path"] == f"/v2/endpoint/{namespace}"
    ]


# -- listing -----------------------------------------------------------------------------------


def test_listing_reads_every_page(api, cloud):
    for index in range(45):
        cloud.seed_endpoint(f"ep-{index:02d}", tags=["nightly"] if index % 3 == 0 else [])
    cloud.clear_requests()
    assert [e.name for e in api.list_endpoints()] == [f"ep-{index:02d}" for index in range(45)]
    assert len(listing_requests(cloud)) == 3  # pages of 20, 20 and 5
    cloud.clear_requests()
    assert len(api.list_endpoints(limit=10)) == 45
    assert len(listing_requests(cloud)) == 5
    nightly = api.list_endpoints(tags=["nightly"], limit=4)
    assert [e.name for e in nightly] == [f"ep-{index:02d}" for index in range(0, 45, 3)]
    assert all(e.tags == ("nightly",) for e in nightly)
    assert [e.name for e in api.list_endpoints(search="ep-4")] == [f"ep-{index}" for index in range(40, 45)]


def test_listing_every_namespace_reads_every_page_of_each(make_client):
    with Emulator(users=["ana:hf_ana_token:acme,labs"], deploy_seconds=0.2) as other:
        for index in range(45):
            other.seed_endpoint(f"acme-{index:02d}", namespace="acme")
        for index in range(21):
            other.seed_endpoint(f"lab-{index:02d}", namespace="labs")
        other.seed_endpoint("mine", namespace="ana")
        api = make_client("hf_ana_token", api_url=other.url, hub_url=other.url)
        listing = api.list_endpoints("*")
        assert len(listing) == 45 + 21 + 1
        assert not listing.failures
        assert {e.namespace for e in listing} == {"acme", "labs", "ana"}
        assert len(listing_requests(other, "acme")) == 3
        assert len(listing_requests(other, "labs")) == 2


# -- quotas ------------------------------------------------------------------------------------


def test_quota_is_read_and_checked_before_any_change(api, cloud):
    cloud.set_quota("demo", "aws", "nvidia-a10g", 4)
    cloud.seed_endpoint(
        "holder",
        compute={
            "accelerator": "gpu",
            "instanceType": "nvidia-a10g",
            "instanceSize": "x4",
            "scaling": {"minReplica": 1, "maxReplica": 1},
        },
    )
    a10g = next(q for q in api.quotas() if (q.vendor, q.instance_type) == ("aws", "nvidia-a10g"))
    assert (a10g.max_accelerators, a10g.used_accelerators) == (4, 4)
    cloud.clear_requests()
    with pytest.raises(CapacityError, match=r"quota: 4 of 4 nvidia-a10g in aws/us-east-1 in use"):
        api.check_capacity(vendor="aws", region="us-east-1", instance_type="nvidia-a10g", instance_size="x1")
    assert [r["method"] for r in cloud.requests("management") if r["path"].startswith("/v2/endpoint")] == []
    # the same check passes for hardware the namespace still has room on, and for the holder itself
    assert api.check_capacity(vendor="aws", region="us-east-1", instance_type="nvidia-l4", instance_size="x1")
    assert api.check_capacity(
        vendor="aws", region="us-east-1", instance_type="nvidia-a10g", instance_size="x4", already_held=4
    )
    # the service enforces it too: a create past the quota is refused, nothing is left pending
    response = cloud.api(
        "POST",
        "/v2/endpoint/demo",
        json={**cloud.endpoint("holder"), "name": "second"},
    )
    assert response.status_code == 400
    assert "quota" in response.json()["error"].lower()
    assert cloud.endpoint("second") is None


def test_multi_gpu_offers_carry_their_own_price_and_memory_per_accelerator(api):
    offers = {(o.instance_type, o.instance_size): o for o in api.list_hardware()}
    one, four = offers["nvidia-l4", "x1"], offers["nvidia-l4", "x4"]
    assert (one.num_accelerators, four.num_accelerators) == (1, 4)
    assert one.gpu_memory_gb == four.gpu_memory_gb == 24  # per accelerator, as the 2026 listing says
    assert four.price_per_hour == 3.8  # the x4 offer's own price per replica, not 4 x 0.8


# -- the catalog -------------------------------------------------------------------------------


def test_catalog_lists_and_deploys_by_repository_or_recipe(api, cloud):
    models = api.list_catalog()
    assert "HuggingFaceH4/zephyr-7b-beta" in [m.repo_id for m in models]
    assert [m.repo_id for m in api.list_catalog(task="feature-extraction")] == ["BAAI/bge-small-en-v1.5"]
    assert [m.repo_id for m in api.list_catalog(engine="tgi")] == ["HuggingFaceH4/zephyr-7b-beta"]
    by_repo = api.deploy_from_catalog(repo_id="HuggingFaceH4/zephyr-7b-beta", name="zephyr")
    assert (by_repo.name, by_repo.namespace, by_repo.status) == ("zephyr", "demo", "pending")
    assert by_repo.image_kind == "tgi"
    recipe = next(m for m in models if m.repo_id == "BAAI/bge-small-en-v1.5").recipes[0]["publicId"]
    by_recipe = api.deploy_from_catalog(recipe_id=recipe)
    assert by_recipe.repository == "BAAI/bge-small-en-v1.5"
    assert cloud.endpoint(by_recipe.name)["model"]["fromCatalog"] is True
    with pytest.raises(InvalidEndpointArgumentError, match="repo_id"):
        api.deploy_from_catalog(repo_id="a/b", recipe_id="c")
    with pytest.raises(NotFoundError):
        api.deploy_from_catalog(repo_id="nobody/nothing")


@pytest.mark.huggingface_hub
def test_the_real_huggingface_hub_client_uses_the_emulated_catalog(hub, cloud):
    cloud.clear_requests()
    listed = hub.list_inference_catalog()  # 1.x: repository ids; 2.4: models with their recipes
    assert "openai-community/gpt2" in [getattr(model, "repo_id", model) for model in listed]
    endpoint = hub.create_inference_endpoint_from_catalog("openai-community/gpt2", name="from-hub")
    assert endpoint.name == "from-hub"
    assert cloud.endpoint("from-hub")["model"]["fromCatalog"] is True
    paths = [r["path"] for r in cloud.requests("management") if "catalog" in r["path"]]
    if huggingface_hub.__version__.startswith("1."):
        assert paths == ["/api/catalog/repo-list", "/api/catalog/deploy"], paths
    else:  # the 2.4 line
        assert paths == ["/api/v1/catalog/list", "/api/v1/catalog/model/openai-community/gpt2/deploy"], paths


def test_bad_arguments_of_these_calls_are_refused_before_any_request(api, cloud):
    cloud.clear_requests()
    for call, field in [
        (lambda: api.list_endpoints(limit=0), "limit"),
        (lambda: api.list_endpoints("Bad Space"), "namespace"),
        (lambda: api.deploy_from_catalog(), "repo_id"),
        (lambda: api.deploy_from_catalog(repo_id="a/b", name="Bad Name"), "endpoint_name"),
        (
            lambda: api.check_capacity(
                vendor="aws", region="us-east-1", instance_type="nvidia-l4", instance_size="x1", replicas=-1
            ),
            "replicas",
        ),
    ]:
        with pytest.raises(InvalidEndpointArgumentError, match=field) as refused:
            call()
        assert "Fix" in str(refused.value)
    assert cloud.requests() == []


# -- fields new in 2026 ------------------------------------------------------------------------


def test_the_fields_new_in_2026_are_kept_on_the_model(api, cloud):
    spec = EndpointSpec(
        name="routed",
        **CPU_ENDPOINT,
        tags=["nightly", "team-a"],
        domain="models.example.com",
        path="/routed",
        cache_http_responses=False,
    )
    created = api.create(spec)
    read = api.get("routed")
    for endpoint in (created, read):
        assert endpoint.tags == ("nightly", "team-a")
        assert endpoint.route == {"domain": "models.example.com", "path": "/routed"}
        assert endpoint.experimental_features == {"cacheHttpResponses": False}
        assert endpoint.to_dict()["route"] == {"domain": "models.example.com", "path": "/routed"}
