"""
The emulator against the 2026 contract (``tests/contract/hf-endpoints-api-2026.json``, a copy of the
published contract as data): every route it lists is either served, and each answer checked against
the contract's schema, or named here as left out, with the reason.

The checks come from the contract, not from our client: an emulator that agreed with the client on
a mistake would fail here.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from airflow_provider_hfep.endpoints import EndpointSpec, EndpointUpdate

from tests.contract.validate import CONTRACT, Validator

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from airflow_provider_hfep.emulator import Emulator

pytestmark = pytest.mark.integration

NS = "demo"
EP = f"/v2/endpoint/{NS}"

#: Routes of the contract the emulator does not serve, and why.
LEFT_OUT = {
    (
        "GET",
        "/v2/endpoint/{namespace}/{name}/logs/sse",
    ): "log streaming: the provider reads logs once, after a wait ends",
    ("GET", "/v3/endpoint/{namespace}/{name}/logs/sse"): "log streaming: as above",
    ("GET", "/v2/endpoint/{namespace}/{name}/open-metrics"): "PRO plan's Prometheus export: no DAG use",
    (
        "POST",
        "/v2/endpoint/{namespace}/{name}/agent/debug",
    ): "an AI debugging agent: its answer is not specified",
    ("GET", "/v2/audit-logs/{namespace}"): "audit logs (PRO): outside endpoint management",
    ("GET", "/v2/network/private-service/{namespace}"): "network routes: outside the endpoint scope",
    ("DELETE", "/v2/network/private-service/{namespace}/{service-id}"): "network routes",
    ("GET", "/v2/network/cidr-list/{namespace}"): "network routes",
    ("POST", "/v2/network/cidr-list/{namespace}"): "network routes",
    ("POST", "/v2/network/cidr-list/{namespace}/{cidr_id}"): "network routes",
    ("DELETE", "/v2/network/cidr-list/{namespace}/{cidr_id}"): "network routes",
    ("GET", "/v2/network/domain/{namespace}"): "network routes",
    ("POST", "/v2/network/domain/{namespace}"): "network routes",
    ("DELETE", "/v2/network/domain/{namespace}/{domain}"): "network routes",
}

ROUTES = {(route["method"], route["path"]): route for route in CONTRACT["routes"]}


def window() -> dict[str, Any]:
    now = int(time.time())
    return {"dnsPrefix": "a1b2c3", "from": now - 600, "to": now, "step": "60s"}


def metric(name: str) -> Callable[[Emulator, str], httpx.Response]:
    return lambda cloud, endpoint: cloud.api("POST", f"{EP}/{endpoint}/metrics/{name}", json=window())


#: How to call each served route for one endpoint of the namespace.
SERVED: dict[tuple[str, str], Callable[[Emulator, str], httpx.Response]] = {
    ("GET", "/v2/endpoint/{namespace}"): lambda cloud, _: cloud.api("GET", EP, params={"limit": 2}),
    ("GET", "/v2/endpoint/{namespace}/{name}"): lambda cloud, endpoint: cloud.api("GET", f"{EP}/{endpoint}"),
    ("GET", "/v2/endpoint/{namespace}/{name}/logs"): lambda cloud, endpoint: cloud.api(
        "GET", f"{EP}/{endpoint}/logs", params={"tail": 50}
    ),
    ("GET", "/v3/endpoint/{namespace}/{name}/logs"): lambda cloud, endpoint: cloud.api(
        "GET", f"/v3/endpoint/{NS}/{endpoint}/logs", params={"limit": 50}
    ),
    ("GET", "/v2/endpoint/{namespace}/{name}/replica"): lambda cloud, endpoint: cloud.api(
        "GET", f"{EP}/{endpoint}/replica"
    ),
    ("POST", "/v2/endpoint/{namespace}/{name}/metrics"): lambda cloud, endpoint: cloud.api(
        "POST", f"{EP}/{endpoint}/metrics", json=window()
    ),
    # each metric route the contract lists
    **{
        ("POST", route["path"]): metric(route["path"].rsplit("/metrics/", 1)[1])
        for route in CONTRACT["routes"]
        if route["method"] == "POST" and "/metrics/" in route["path"]
    },
    ("GET", "/v2/provider/{namespace}"): lambda cloud, _: cloud.api("GET", f"/v2/provider/{NS}"),
    ("GET", "/v2/provider/quotas/{namespace}"): lambda cloud, _: cloud.api(
        "GET", f"/v2/provider/quotas/{NS}"
    ),
}
#: The writes, called in this order on an endpoint of their own (each answers the endpoint).
WRITES: list[tuple[tuple[str, str], Callable[[Emulator, str], httpx.Response]]] = [
    (
        ("POST", "/v2/endpoint/{namespace}"),
        lambda cloud, endpoint: cloud.api("POST", EP, json=body(endpoint)),
    ),
    (
        ("PUT", "/v2/endpoint/{namespace}/{name}"),
        lambda cloud, endpoint: cloud.api(
            "PUT", f"{EP}/{endpoint}", json={"compute": {"scaling": {"minReplica": 0, "maxReplica": 2}}}
        ),
    ),
    (
        ("POST", "/v2/endpoint/{namespace}/{name}/pause"),
        lambda cloud, e: cloud.api("POST", f"{EP}/{e}/pause"),
    ),
    (
        ("POST", "/v2/endpoint/{namespace}/{name}/resume"),
        lambda cloud, e: cloud.api("POST", f"{EP}/{e}/resume"),
    ),
    (
        ("POST", "/v2/endpoint/{namespace}/{name}/scale-to-zero"),
        lambda cloud, e: cloud.api("POST", f"{EP}/{e}/scale-to-zero"),
    ),
    (("DELETE", "/v2/endpoint/{namespace}/{name}"), lambda cloud, e: cloud.api("DELETE", f"{EP}/{e}")),
]


def body(name: str, **extra: Any) -> dict[str, Any]:
    """A create body as the contract describes it, with the 2026 fields set."""
    return {
        "name": name,
        "type": "authenticated",
        "provider": {"vendor": "aws", "region": "us-east-1"},
        "compute": {
            "accelerator": "gpu",
            "instanceType": "nvidia-l4",
            "instanceSize": "x1",
            "scaling": {"minReplica": 1, "maxReplica": 2, "scaleToZeroTimeout": 15},
        },
        "model": {
            "repository": "meta-llama/Llama-3.1-8B-Instruct",
            "framework": "pytorch",
            "task": "text-generation",
            "image": {"tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3.4", "port": 80}},
            "env": {"MAX_BATCH_SIZE": "8"},
        },
        "tags": ["nightly", "llm"],
        "experimentalFeatures": {"cacheHttpResponses": True},
        "route": {"path": "/v1"},
        "privateService": None,
        **extra,
    }


def test_every_contract_route_is_served_or_left_out_on_purpose(cloud):
    served = set(SERVED) | {route for route, _ in WRITES}
    assert not served & set(LEFT_OUT)
    assert served | set(LEFT_OUT) == set(ROUTES)
    assert len(served) == 22
    cloud.seed_endpoint("present")
    for method, path in LEFT_OUT:
        concrete = path.format(
            namespace=NS, name="present", cidr_id="c1", domain="d.example", **{"service-id": "s1"}
        )
        concrete = concrete.replace("{service-id}", "s1")
        assert cloud.api(method, concrete).status_code in (404, 405), (method, path)


STATES = [
    "pending",
    "initializing",
    "running",
    "updating",
    "updateFailed",
    "failed",
    "paused",
    "scaledToZero",
]


def test_every_answer_of_every_served_route_matches_the_contract(cloud):
    check = Validator()
    check.check(body("x"), "Endpoint")  # the test's own input is what the contract describes
    assert check.problems == []
    # the listing shows every availability; a deployment waiting for capacity has a pending replica
    cloud.set_availability("aws", "us-east-1", body("")["compute"]["instanceType"], "low_availability")
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "not_available")
    for state in STATES:
        cloud.seed_endpoint(
            f"ep-{state.lower()}", state=state, **{k: v for k, v in body("").items() if k != "name"}
        )
    cloud.set_state("ep-failed", "failed", "Container exited: CUDA out of memory")
    cloud.seed_endpoint("cpu-one", state="running")  # the emulator's own default body

    answered: dict[tuple[str, str], int] = {}

    def call(route: tuple[str, str], response: httpx.Response) -> None:
        assert response.status_code == 200, (route, response.status_code, response.text)
        declared = ROUTES[route]["responseContentType"]
        assert response.headers["content-type"].startswith(declared.split()[0]), (route, declared)
        schema = ROUTES[route]["responses"]["200"]
        if declared.startswith("application/json"):
            answer = response.json()
            if schema is not None:
                check.check(answer, schema, f"{route[0]} {route[1]}")
        answered[route] = answered.get(route, 0) + 1

    for endpoint in [f"ep-{state.lower()}" for state in STATES] + ["cpu-one"]:
        for route, request in SERVED.items():
            call(route, request(cloud, endpoint))
    for route, request in WRITES:
        call(route, request(cloud, "written"))

    assert check.problems == []
    assert set(answered) == set(SERVED) | {route for route, _ in WRITES}
    # the check was not empty: every endpoint field, enum and nested schema was looked at
    assert check.checked["key"] > 1000
    assert check.checked["enum"] > 50
    for schema in (
        "EndpointWithStatus",
        "EndpointStatus",
        "TgiContainer",
        "Compute",
        "ComputeQuota",
        "ReplicaStatus",
        "VendorQuota",
        "RegionComputeQuota",
    ):
        assert check.checked[f"schema:{schema}"] > 0, schema
    # what the contract leaves undocumented, and only that, went unchecked
    assert set(check.unchecked) <= {"EndpointNotifications", "AllGraphs"} | {
        name for name in CONTRACT["schemas"] if name.startswith("Graph")
    }


def test_the_listing_pages_as_the_contract_says(cloud):
    for index in range(45):
        cloud.seed_endpoint(f"ep-{index:02d}")
    check = Validator()
    names: list[str] = []
    cursor, pages = None, 0
    while True:
        answer = cloud.api("GET", EP, params={"cursor": cursor} if cursor else None).json()
        check.check(answer, "EndpointWithStatusList")
        names += [item["name"] for item in answer["items"]]
        pages += 1
        cursor = answer.get("nextCursor")
        if not cursor:
            break
    assert check.problems == []
    assert pages == 3  # the default page of 20
    assert names == sorted(names)
    assert len(set(names)) == 45
    assert "prevCursor" not in cloud.api("GET", EP).json()  # the first page has nothing before it


def test_cursors_stay_stable_while_endpoints_come_and_go(cloud):
    for index in range(30):
        cloud.seed_endpoint(f"ep-{index:02d}")
    first = cloud.api("GET", EP, params={"limit": 10}).json()
    assert [item["name"] for item in first["items"]] == [f"ep-{index:02d}" for index in range(10)]
    cloud.api("DELETE", f"{EP}/ep-03")  # already read
    cloud.api("DELETE", f"{EP}/ep-12")  # not yet read
    cloud.seed_endpoint("ep-00a")  # sorts before the cursor: not shown on later pages
    cloud.seed_endpoint("ep-15a")  # after the cursor: shown
    rest: list[str] = []
    cursor = first["nextCursor"]
    while cursor:
        page = cloud.api("GET", EP, params={"limit": 10, "cursor": cursor}).json()
        rest += [item["name"] for item in page["items"]]
        cursor = page.get("nextCursor")
    expected = [f"ep-{index:02d}" for index in range(10, 30) if index != 12]
    expected.insert(expected.index("ep-16"), "ep-15a")
    assert rest == expected
    back = cloud.api("GET", EP, params={"limit": 10, "cursor": page_two_prev(cloud)}).json()
    assert [item["name"] for item in back["items"]] == ["ep-00", "ep-00a", "ep-01", "ep-02"] + [
        f"ep-{index:02d}" for index in range(4, 10)
    ]


def page_two_prev(cloud: Emulator) -> str:
    first = cloud.api("GET", EP, params={"limit": 10}).json()
    second = cloud.api("GET", EP, params={"limit": 10, "cursor": first["nextCursor"]}).json()
    return second["prevCursor"]


def test_tags_and_search_filter_the_listing(cloud):
    cloud.seed_endpoint("night-llm", tags=["nightly", "llm"])
    cloud.seed_endpoint("night-embed", tags=["nightly"])
    cloud.seed_endpoint("day-llm", tags=["llm"])

    def names(**params: str) -> list[str]:
        return [item["name"] for item in cloud.api("GET", EP, params=params).json()["items"]]

    assert names(tags="nightly") == ["night-embed", "night-llm"]
    assert names(tags="nightly,llm") == ["night-llm"]
    assert names(search="llm") == ["day-llm", "night-llm"]
    assert names(tags="llm", search="night") == ["night-llm"]


def test_v3_logs_answer_501_where_log_search_is_off(cloud):
    cloud.seed_endpoint("quiet")
    cloud.set_logs_v3(False)
    response = cloud.api("GET", f"/v3/endpoint/{NS}/quiet/logs")
    assert response.status_code == 501
    check = Validator()
    check.check(response.json(), "ApiResponseError")
    assert check.problems == []
    assert cloud.api("GET", f"{EP}/quiet/logs").status_code == 200  # v2 still answers


def test_error_answers_have_the_contract_error_shape(cloud):
    check = Validator()
    for response in (
        cloud.api("GET", f"{EP}/missing"),
        cloud.api("POST", EP, json={"name": "bad"}),
        cloud.api("GET", f"{EP}/missing/replica"),
    ):
        assert response.status_code >= 400
        check.check(response.json(), "ApiResponseError")
    assert check.problems == []


def test_the_checker_finds_what_the_contract_forbids(cloud):
    cloud.seed_endpoint("sample")
    answer = cloud.api("GET", f"{EP}/sample").json()
    del answer["tags"]
    answer["status"]["state"] = "sleeping"
    answer["status"]["readyReplica"] = "1"
    answer["status"]["createdAt"] = "yesterday"
    answer["model"]["image"] = {"tgi": {"port": 80}}
    answer["compute"]["scaling"]["minReplica"] = True
    check = Validator()
    check.check(answer, "EndpointWithStatus")
    assert sorted(check.problems) == [
        "$.compute.scaling.minReplica: expected integer, got a boolean",
        "$.model.image.tgi.url: required by TgiContainer, missing",
        "$.status.createdAt: 'yesterday' is not a date-time",
        "$.status.readyReplica: expected integer, got str '1'",
        "$.status.state: 'sleeping' is not a EndpointState "
        "(['pending', 'initializing', 'updating', 'updateFailed', 'running', 'paused', 'failed', 'scaledToZero'])",
        "$.tags: required by EndpointWithStatus, missing",
    ]


def test_what_our_client_sends_is_what_the_contract_describes(api, cloud):
    """The other direction: our create, update and metrics bodies against the contract's request schemas."""
    cloud.clear_requests()
    api.create(
        EndpointSpec(
            name="sent",
            repository="meta-llama/Llama-3.1-8B-Instruct",
            framework="pytorch",
            accelerator="gpu",
            instance_size="x1",
            instance_type="nvidia-l4",
            region="us-east-1",
            vendor="aws",
            min_replica=0,
            max_replica=2,
            scaling_metric="pendingRequests",
            scaling_threshold=4,
            scale_to_zero_timeout=15,
            revision="main",
            task="text-generation",
            custom_image={"tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3.4"}},
            env={"MAX_BATCH_SIZE": "8"},
            secrets={"API_SECRET": "s3cr3t-value"},
            tags=["nightly"],
            domain="models.example.com",
            path="/v1",
            cache_http_responses=True,
            private_link_account_id="123456789012",
            private_link_shared=True,
        )
    )
    api.update("sent", EndpointUpdate(max_replica=3, cache_http_responses=False, tags=["nightly", "b"]))
    api.metrics("sent", "pending-request", start=time.time() - 600, end=time.time())
    check = Validator()
    sent = [r for r in cloud.requests("management") if r["json"] is not None]
    schemas = {
        ("POST", "/v2/endpoint/demo"): "Endpoint",
        ("PUT", "/v2/endpoint/demo/sent"): "EndpointUpdate",
        ("POST", "/v2/endpoint/demo/sent/metrics/pending-request"): "MetricsParams",
    }
    assert {(r["method"], r["path"]) for r in sent} == set(schemas)
    for request in sent:
        check.check(request["json"], schemas[request["method"], request["path"]], request["path"])
    assert check.problems == []
    assert check.checked["schema:MetricsParams"] == 1
    assert check.checked["key"] > 30  # the bodies were looked into, not just counted
