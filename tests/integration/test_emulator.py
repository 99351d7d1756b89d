"""The emulator's contract, checked over raw HTTP (no provider client): other issues and users rely on it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from datetime import datetime

import httpx
import pytest

from airflow_provider_hfep.emulator import Emulator

from tests.helpers import wait_until

pytestmark = pytest.mark.integration

Z_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BODY = {
    "name": "contract",
    "type": "authenticated",
    "provider": {"vendor": "aws", "region": "us-east-1"},
    "compute": {
        "accelerator": "cpu",
        "instanceType": "intel-spr",
        "instanceSize": "x2",
        "scaling": {"minReplica": 1, "maxReplica": 1, "scaleToZeroTimeout": None},
    },
    "model": {"repository": "gpt2", "framework": "pytorch", "revision": None, "image": {"huggingface": {}}},
}


@pytest.fixture
def http(cloud):
    with httpx.Client(
        base_url=cloud.url, headers={"authorization": f"Bearer {cloud.token}"}, timeout=10
    ) as client:
        yield client


def test_cli_prints_exactly_one_ready_line_and_binds_loopback():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_hfep.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        line = process.stdout.readline()
        assert re.fullmatch(r"HFEP_EMULATOR_URL=http://127\.0\.0\.1:\d+\n", line)
        url = line.strip().split("=", 1)[1]
        assert (
            httpx.get(f"{url}/api/whoami-v2", headers={"authorization": "Bearer hf_demo_token"}).json()[
                "name"
            ]
            == "demo"
        )
    finally:
        process.terminate()
        assert process.wait(10) == 0
    assert process.stdout.read() == ""  # nothing else on stdout


def state_of(http, path: str, state: str) -> dict | None:
    """The endpoint at ``path`` as read now, if it is in ``state``."""
    body = http.get(path).json()
    return body if body["status"]["state"] == state else None


def test_endpoint_json_shape_and_state_clock(http, cloud):
    """Each state it passes through, looked at while it lasts, is in tests/unit/emulator/test_state_clock.py
    (on a clock the test holds); here, what a client reads of them afterwards."""
    created = http.post("/v2/endpoint/demo", json=BODY).json()
    for key in ("name", "type", "healthRoute", "compute", "model", "provider", "status"):
        assert key in created
    assert {"repository", "framework", "revision", "task"} <= set(created["model"])
    assert created["model"]["task"] == "text-generation"  # filled in when omitted
    status = created["status"]
    assert status["state"] == "pending"
    assert "url" not in status
    assert Z_TIMESTAMP.match(status["createdAt"])
    assert Z_TIMESTAMP.match(status["updatedAt"])
    running = wait_until(lambda: state_of(http, "/v2/endpoint/demo/contract", "running"), "running")
    assert running["status"]["url"] == cloud.endpoint_url("contract")
    # stamped when each step was due, however late it was read: the deploy, a quarter of it scheduling
    deploy = cloud.settings.deploy_seconds
    assert seconds(running["status"]["updatedAt"]) - seconds(status["createdAt"]) == pytest.approx(
        deploy, abs=0.002
    )
    (replica,) = http.get("/v2/endpoint/demo/contract/replica").json()["replicas"]
    assert seconds(replica["startedAt"]) - seconds(status["createdAt"]) == pytest.approx(
        deploy / 4, abs=0.002
    )  # its container started when it began initializing


def test_url_kept_on_scale_to_zero_removed_on_pause(http, cloud):
    cloud.seed_endpoint("urls")
    scaled = http.post("/v2/endpoint/demo/urls/scale-to-zero").json()
    assert scaled["status"]["state"] == "scaledToZero"
    assert scaled["status"]["url"] == cloud.endpoint_url("urls")
    paused = http.post("/v2/endpoint/demo/urls/pause").json()
    assert paused["status"]["state"] == "paused"
    assert "url" not in paused["status"]


def test_put_deep_merges_and_answers_with_the_stale_state_first(http, cloud):
    cloud.seed_endpoint(
        "merge",
        model={
            "repository": "gpt2",
            "framework": "pytorch",
            "task": "text-generation",
            "image": {"huggingface": {}},
            "env": {"A": "1"},
        },
    )
    answer = http.put(
        "/v2/endpoint/demo/merge",
        json={"model": {"env": {"B": "2"}}, "compute": {"scaling": {"maxReplica": 4}}},
    )
    body = answer.json()
    assert body["status"]["state"] == "running"  # the race huggingface_hub's wait() falls into
    assert body["model"]["env"] == {"A": "1", "B": "2"}
    assert body["model"]["repository"] == "gpt2"
    assert body["compute"]["scaling"]["maxReplica"] == 4
    assert body["compute"]["instanceType"] == "nvidia-l4"
    # updating after the lag, then running: tests/unit/emulator/test_state_clock.py
    image = http.put(
        "/v2/endpoint/demo/merge", json={"model": {"image": {"tgi": {"url": "ghcr.io/tgi:3"}}}}
    ).json()
    assert image["model"]["image"] == {"tgi": {"url": "ghcr.io/tgi:3"}}  # a union: replaced, not merged


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (lambda b: b.update(name="Bad_Name"), 400, "VALIDATION_FAILED: name:"),
        (lambda b: b.update(type="protected"), 400, "VALIDATION_FAILED: type:"),
        (lambda b: b["model"].update(task=None), 400, "model.task: expected value"),
        (
            lambda b: b["model"].update(image={"vLLM": {"port": 8000}}),
            400,
            "VALIDATION_FAILED: model.image.vLLM: missing field `url`",
        ),
        (
            lambda b: b["compute"]["scaling"].update(minReplica=3),
            400,
            "VALIDATION_FAILED: compute.scaling.minReplica",
        ),
        (lambda b: b.update(route={"path": "no-slash"}), 400, "VALIDATION_FAILED: route.path"),
        (lambda b: b["model"].pop("repository"), 400, "VALIDATION_FAILED: model.repository: missing field"),
    ],
)
def test_bad_bodies_answer_400_validation_failed(http, mutate, status, message):
    import copy

    body = copy.deepcopy(BODY)
    mutate(body)
    answer = http.post("/v2/endpoint/demo", json=body)
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_error_statuses(http, cloud):
    assert http.post("/v2/endpoint/demo", json=BODY).status_code == 200
    assert http.post("/v2/endpoint/demo", json=BODY).json() == {"error": "Endpoint name already exists"}
    assert http.post("/v2/endpoint/demo", json=BODY).status_code == 409
    assert http.get("/v2/endpoint/demo/missing").status_code == 404
    assert http.get("/v2/endpoint/other/contract").status_code == 403
    assert httpx.get(f"{cloud.url}/v2/endpoint/demo/contract").status_code == 401
    assert (
        httpx.get(f"{cloud.url}/api/whoami-v2", headers={"authorization": "Bearer nope"}).status_code == 401
    )
    cloud.set_state("contract", "running")
    resumed = http.post("/v2/endpoint/demo/contract/resume")
    assert resumed.status_code == 400
    assert "already running" in resumed.text


# -- data plane --------------------------------------------------------------------------------


def test_data_plane_tasks_are_deterministic(http, cloud):
    cloud.seed_endpoint("gen")
    cloud.seed_endpoint(
        "emb",
        model={
            "repository": "BAAI/bge-small",
            "framework": "pytorch",
            "task": "feature-extraction",
            "image": {"huggingface": {}},
        },
    )
    cloud.seed_endpoint(
        "cls",
        model={
            "repository": "finbert",
            "framework": "pytorch",
            "task": "text-classification",
            "image": {"huggingface": {}},
        },
    )
    gen = http.post(
        "/endpoints/demo/gen", json={"inputs": "Hello", "parameters": {"max_new_tokens": 5}}
    ).json()
    assert isinstance(gen, list)
    assert len(gen[0]["generated_text"].split()) == 5
    assert (
        http.post("/endpoints/demo/gen", json={"inputs": "Hello", "parameters": {"max_new_tokens": 5}}).json()
        == gen
    )
    assert (
        http.post(
            "/endpoints/demo/gen/generate", json={"inputs": "Hello", "parameters": {"max_new_tokens": 5}}
        ).json()
        == gen[0]
    )
    chat = http.post(
        "/endpoints/demo/gen/v1/chat/completions",
        json={"model": "tgi", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    ).json()
    assert chat["object"] == "chat.completion"
    assert chat["choices"][0]["message"]["role"] == "assistant"
    [vector] = http.post("/endpoints/demo/emb", json={"inputs": "a sentence"}).json()
    assert len(vector) == 16
    assert abs(sum(x * x for x in vector) - 1) < 1e-3
    assert len(http.post("/endpoints/demo/emb", json={"inputs": ["a", "b", "c"]}).json()) == 3
    [[top, second]] = http.post("/endpoints/demo/cls", json={"inputs": "I like you"}).json()
    assert top["score"] >= second["score"]
    assert {top["label"], second["label"]} == {"POSITIVE", "NEGATIVE"}
    bad = http.post("/endpoints/demo/gen", json={"prompt": "no inputs"})
    assert bad.status_code == 422
    assert bad.json()["error_type"] == "validation"


def test_data_plane_access_by_endpoint_type(cloud):
    cloud.seed_endpoint("open", type="public")
    cloud.seed_endpoint("closed", type="authenticated")
    assert httpx.post(cloud.endpoint_url("open"), json={"inputs": "x"}).status_code == 200
    assert httpx.post(cloud.endpoint_url("closed"), json={"inputs": "x"}).status_code == 401
    with Emulator(users=["ana:hf_ana:acme", "bob:hf_bob"], deploy_seconds=0.2, latency_ms=1) as other:
        other.seed_endpoint("members", namespace="acme", type="private")
        url = other.endpoint_url("members", "acme")
        assert (
            httpx.post(url, json={"inputs": "x"}, headers={"authorization": "Bearer hf_ana"}).status_code
            == 200
        )
        assert (
            httpx.post(url, json={"inputs": "x"}, headers={"authorization": "Bearer hf_bob"}).status_code
            == 403
        )


def test_health_route_and_unavailable_states(http, cloud):
    cloud.seed_endpoint("h", state="running")
    assert http.get("/endpoints/demo/h/health").status_code == 200
    cloud.set_state("h", "initializing")
    unhealthy = http.get("/endpoints/demo/h/health")
    assert unhealthy.status_code == 503
    assert unhealthy.json() == {
        "error": "unhealthy",
        "error_type": "healthcheck",
    }
    http.post("/v2/endpoint/demo/h/pause")
    assert http.post("/endpoints/demo/h", json={"inputs": "x"}).status_code == 502


def test_scaled_to_zero_wakes_on_request_or_holds_with_scale_up_timeout(http, cloud):
    cloud.seed_endpoint("sleepy", state="scaledToZero")
    first = http.post("/endpoints/demo/sleepy", json={"inputs": "x"})
    assert first.status_code == 503
    assert http.get("/v2/endpoint/demo/sleepy").json()["status"]["state"] == "initializing"
    wait_until(lambda: state_of(http, "/v2/endpoint/demo/sleepy", "running"), "the cold start to end")
    http.post("/v2/endpoint/demo/sleepy/scale-to-zero")
    held = http.post("/endpoints/demo/sleepy", json={"inputs": "x"}, headers={"X-Scale-Up-Timeout": "10"})
    assert held.status_code == 200  # held through the 0.3 s cold start, then answered


def test_capacity_overflow_answers_429_overloaded(cloud):
    with Emulator(latency_ms=300, capacity=2, deploy_seconds=0.2) as small:
        small.seed_endpoint("busy", type="public")

        async def burst():
            async with httpx.AsyncClient(timeout=10) as client:
                return await asyncio.gather(
                    *[client.post(small.endpoint_url("busy"), json={"inputs": str(i)}) for i in range(5)]
                )

        answers = asyncio.run(burst())
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200, 200, 429, 429, 429]
        overloaded = next(a for a in answers if a.status_code == 429)
        assert overloaded.json() == {"error": "Model is overloaded", "error_type": "overloaded"}


# -- control API -------------------------------------------------------------------------------


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_billing_meter_counts_billable_states_and_requests(http, cloud):
    seeded = cloud.seed_endpoint("meter", state="running")
    http.post("/endpoints/demo/meter", json={"inputs": "x"})
    paused = http.post("/v2/endpoint/demo/meter/pause").json()
    paused_meter = cloud.billing("meter")
    # billed exactly from running to paused, as the endpoint's own timestamps say (to their millisecond)
    ran = _epoch(paused["status"]["updatedAt"]) - _epoch(seeded["status"]["updatedAt"])
    assert paused_meter["billable_seconds"] == pytest.approx(ran, abs=0.002)
    assert paused_meter["requests"] == 1
    http.get("/v2/endpoint/demo/meter")  # time passes, the endpoint stays paused
    assert cloud.billing("meter") == paused_meter  # paused costs nothing: not a microsecond more
    http.delete("/v2/endpoint/demo/meter")
    assert cloud.billing("meter") == paused_meter  # a deleted endpoint keeps its final meter


def test_replica_seconds_multiply_by_replicas(http, cloud):
    cloud.seed_endpoint(
        "wide",
        compute={
            "accelerator": "gpu",
            "instanceType": "nvidia-l4",
            "instanceSize": "x1",
            "scaling": {"minReplica": 3, "maxReplica": 3},
        },
    )
    http.post("/v2/endpoint/demo/wide/pause")
    meter = cloud.billing("wide")
    assert meter["billable_seconds"] > 0
    assert meter["replica_seconds"] == pytest.approx(3 * meter["billable_seconds"], rel=1e-9)


def test_request_log_and_reset(http, cloud):
    http.post("/v2/endpoint/demo", json=BODY)
    [entry] = cloud.requests("management")
    assert (entry["method"], entry["path"], entry["status"], entry["json"]["name"]) == (
        "POST",
        "/v2/endpoint/demo",
        200,
        "contract",
    )
    assert entry["headers"]["authorization"] == "[redacted]"
    cloud.reset()
    assert cloud.requests() == []
    assert http.get("/v2/endpoint/demo").json() == {"items": []}


def test_cli_faults_are_reproducible_with_a_seed():
    def run() -> list[int]:
        with Emulator(faults=["management:503:0.5"], seed=42, deploy_seconds=0.2) as faulty:
            return [
                httpx.get(
                    f"{faulty.url}/api/whoami-v2", headers={"authorization": f"Bearer {faulty.token}"}
                ).status_code
                for _ in range(20)
            ]

    first, second = run(), run()
    assert first == second
    assert 503 in first
    assert 200 in first


def test_hardware_listing_shape(http):
    vendors = http.get("/v2/provider/demo").json()["vendors"]
    compute = vendors[0]["regions"][0]["computes"][0]
    for key in (
        "id",
        "accelerator",
        "instanceType",
        "instanceSize",
        "architecture",
        "numAccelerators",
        "memoryGb",
        "pricePerHour",
        "status",
        "quota",
    ):
        assert key in compute


def test_rules_fire_once_in_the_request_and_adding_one_keeps_the_others(http, cloud):
    cloud.seed_endpoint("ruled", state="paused")
    cloud.on("resume", "ruled", state="failed", message="Out of GPU capacity")
    resumed = http.post("/v2/endpoint/demo/ruled/resume").json()
    assert resumed["status"]["state"] == "failed"  # applied in the very request
    assert resumed["status"]["message"] == "Out of GPU capacity"
    cloud.on("get", "ruled", vanish=True, after=1)  # adding a rule neither re-arms nor resets the first
    assert [(r["on"], r["fired"]) for r in cloud.rules()] == [("resume", 1), ("get", 0)]
    assert http.get("/v2/endpoint/demo/ruled").status_code == 200  # let pass (after=1)
    assert http.get("/v2/endpoint/demo/ruled").status_code == 200  # answered, then it vanishes
    assert http.get("/v2/endpoint/demo/ruled").status_code == 404
    http.post("/v2/endpoint/demo", json={**BODY, "name": "ruled"})
    again = http.post("/v2/endpoint/demo/ruled/resume").json()  # the rule fired once: not again
    assert again["status"]["state"] == "pending"


# -- the emulator is as strict as the service, and its control API keeps what it holds -------------


def test_the_control_api_needs_its_token_and_the_log_keeps_no_secret_value(http, cloud):
    secret_body = {
        **BODY,
        "name": "with-secrets",
        "model": {**BODY["model"], "secrets": {"DB_PASSWORD": "s3cr3t-value"}},
    }
    assert http.post("/v2/endpoint/demo", json=secret_body).status_code == 200
    for headers in ({}, {"x-emulator-control-token": "a guess"}):
        assert httpx.get(f"{cloud.url}/_emulator/requests", headers=headers).status_code == 401
        assert httpx.post(f"{cloud.url}/_emulator/reset", headers=headers).status_code == 401
    [entry] = cloud.requests("management")  # the Emulator object holds the token
    assert entry["json"]["model"]["secrets"] == {"DB_PASSWORD": "[redacted]"}
    assert "s3cr3t-value" not in str(cloud.requests())


def test_beyond_loopback_the_cli_makes_a_control_token_and_requires_it():
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_hfep.emulator", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "HFEP_EMULATOR_CONTROL_TOKEN"},
    )
    try:
        token_line = process.stderr.readline()
        assert token_line.startswith("HFEP_EMULATOR_CONTROL_TOKEN=")
        token = token_line.strip().split("=", 1)[1]
        port = process.stdout.readline().strip().rsplit(":", 1)[1]
        control = f"http://127.0.0.1:{port}/_emulator/requests"
        assert httpx.get(control).status_code == 401
        assert httpx.get(control, headers={"x-emulator-control-token": token}).status_code == 200
    finally:
        process.terminate()
        process.wait(10)


def test_the_request_log_keeps_its_newest_entries_and_no_huge_body():
    with Emulator(request_log_size=5, request_body_bytes=100, deploy_seconds=0.1) as small:
        headers = {"authorization": f"Bearer {small.token}"}
        for _ in range(8):
            httpx.get(f"{small.url}/api/whoami-v2", headers=headers)
        httpx.post(f"{small.url}/v2/endpoint/demo", headers=headers, json={**BODY, "name": "x" * 200})
        log = small.requests()
        assert [entry["id"] for entry in log] == [5, 6, 7, 8, 9]  # ids go on counting
        assert log[-1]["json"].endswith("over the log's 100: not kept]")


@pytest.mark.parametrize(
    ("step", "status"), [("60s", 200), ("1m", 200), ("1h", 200), (30, 200), ("1x", 422), ("", 422), (0, 422)]
)
def test_metrics_take_the_contracts_string_durations_and_refuse_bad_ones(http, cloud, step, status):
    cloud.seed_endpoint("measured")
    body = {"dnsPrefix": "measured", "from": 0, "to": 3600, "step": step}
    answer = http.post("/v2/endpoint/demo/measured/metrics/replica-status", json=body)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.json()["step"] == {"60s": 60, "1m": 60, "1h": 3600, 30: 30}[step]


def test_a_failed_start_shows_the_process_own_error(cloud):
    taken = int(cloud.url.rsplit(":", 1)[1])
    with pytest.raises(
        RuntimeError, match=r"(?s)did not start \(no address line; exit status 1\).*Address already in use"
    ):
        Emulator(port=taken).start()


# -- the service's own scale-to-zero, and replicas that tell what ran -----------------------------


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_an_idle_endpoint_with_min_replica_0_scales_itself_to_zero_and_stops_billing():
    """No client involved: scaleToZeroTimeout minutes (an emulated minute is minute_seconds long) after
    the last request, the service scales it to zero; billing stops then; the next request wakes it."""
    with Emulator(minute_seconds=0.2, deploy_seconds=0.2, cold_start_seconds=0.2, latency_ms=1) as cloud:
        cloud.seed_endpoint(
            "idle",
            compute={
                **BODY["compute"],
                "scaling": {"minReplica": 0, "maxReplica": 1, "scaleToZeroTimeout": 2},
            },
        )
        headers = {"authorization": f"Bearer {cloud.token}"}
        last = httpx.post(cloud.endpoint_url("idle"), json={"inputs": "x"}, headers=headers)
        assert last.status_code == 200
        answered_at = time.time()
        wait_until(lambda: cloud.state("idle") == "scaledToZero", "the service to scale it to zero")
        assert (
            cloud.endpoint("idle")["status"]["message"] == "Scaled to zero after 2 minutes without requests"
        )
        billed = cloud.billing("idle")["billable_seconds"]
        time.sleep(0.5)  # nothing is billed while it is scaled to zero: the meter stays put
        assert cloud.billing("idle")["billable_seconds"] == billed
        stopped = [
            r
            for r in cloud.api("GET", "/v2/endpoint/demo/idle/replica").json()["replicas"]
            if "stoppedAt" in r
        ]
        assert stopped
        assert seconds(stopped[-1]["stoppedAt"]) == pytest.approx(answered_at + 2 * 0.2, abs=0.1)
        woken = httpx.post(cloud.endpoint_url("idle"), json={"inputs": "x"}, headers=headers)
        assert woken.status_code == 503  # the first request wakes it, as after any scale-to-zero
        assert cloud.state("idle") == "initializing"


def test_the_replica_listing_tells_what_the_meter_billed(http, cloud):
    cloud.seed_endpoint(
        "told", state="running", compute={**BODY["compute"], "scaling": {"minReplica": 2, "maxReplica": 2}}
    )
    time.sleep(0.3)
    http.post("/v2/endpoint/demo/told/pause")
    replicas = http.get("/v2/endpoint/demo/told/replica").json()["replicas"]
    assert len(replicas) == 2
    assert all(r["stage"] == "stopped" and not r["live"] for r in replicas)
    lived = sum(seconds(r["stoppedAt"]) - seconds(r["startedAt"]) for r in replicas)
    assert lived == pytest.approx(cloud.billing("told")["replica_seconds"], abs=0.01)


def _statuses(http) -> dict[str, str]:
    listing = http.get("/v2/provider/demo").json()
    return {c["id"]: c["status"] for v in listing["vendors"] for r in v["regions"] for c in r["computes"]}


def test_capacity_per_vendor_region_and_type_shows_in_the_listing_and_decides_deployments(http, cloud):
    cloud.seed_endpoint("cap", state="paused")  # on an L4 in aws/us-east-1
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "not_available")
    statuses = _statuses(http)
    assert statuses["aws-us-east-1-nvidia-l4-x1"] == "not_available"
    assert statuses["gcp-us-east4-nvidia-l4-x1"] == "available"  # another vendor and region: its own
    refused = http.post("/v2/endpoint/demo/cap/resume")
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("Insufficient capacity: nvidia-l4 x1 in aws/us-east-1")
    assert cloud.state("cap") == "paused"

    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "low_availability")
    assert _statuses(http)["aws-us-east-1-nvidia-l4-x1"] == "low_availability"
    assert http.post("/v2/endpoint/demo/cap/resume").status_code == 200
    endpoint = cloud.endpoint("cap")
    assert endpoint["status"]["state"] == "pending"
    assert "insufficient capacity for nvidia-l4 x1" in endpoint["status"]["message"]
    (waiting,) = http.get("/v2/endpoint/demo/cap/replica").json()["replicas"]
    assert waiting["stage"] == "pending"
    assert not waiting["live"]
    assert "startedAt" not in waiting
    log = http.get("/v2/endpoint/demo/cap/logs").text
    assert "WARNING - Endpoint waiting to be scheduled: insufficient capacity" in log
    assert cloud.billing("cap")["replica_seconds"] == 0

    # capacity comes back a moment later: the deployment starts then, by itself
    cloud.set_availability("aws", "us-east-1", "nvidia-l4", "available", in_seconds=0.2)
    assert _statuses(http)["aws-us-east-1-nvidia-l4-x1"] == "low_availability"  # not yet
    wait_until(lambda: cloud.state("cap") == "running", "the deployment to start once capacity is back")
    assert cloud.endpoint("cap")["status"]["message"] == "Endpoint is ready"


def test_an_update_moving_a_pending_endpoint_to_available_hardware_deploys_it(http, cloud):
    cloud.set_availability("aws", "us-east-1", "nvidia-a100", "low_availability")
    cloud.seed_endpoint(
        "cap",
        state="pending",
        compute={
            "accelerator": "gpu",
            "instanceType": "nvidia-a100",
            "instanceSize": "x1",
            "scaling": {"minReplica": 1, "maxReplica": 1},
        },
    )
    assert "insufficient capacity" in cloud.endpoint("cap")["status"]["message"]
    to_a10g = {"compute": {"instanceType": "nvidia-a10g", "instanceSize": "x1"}}
    cloud.set_availability("aws", "us-east-1", "nvidia-a10g", "not_available")
    refused = http.put("/v2/endpoint/demo/cap", json=to_a10g)
    assert refused.status_code == 400
    assert "Insufficient capacity" in refused.json()["error"]
    cloud.set_availability("aws", "us-east-1", "nvidia-a10g", "available")
    assert http.put("/v2/endpoint/demo/cap", json=to_a10g).status_code == 200
    wait_until(lambda: cloud.state("cap") == "running", "the moved endpoint to run")


def test_availability_is_a_cli_option_a_rule_and_refused_when_unknown(cloud):
    with Emulator(availability=["aws:us-east-1:nvidia-t4:not_available"], deploy_seconds=0.2) as other:
        listing = other.api("GET", "/v2/provider/demo").json()
        statuses = {
            c["id"]: c["status"] for v in listing["vendors"] for r in v["regions"] for c in r["computes"]
        }
        assert statuses["aws-us-east-1-nvidia-t4-x1"] == "not_available"
        assert other._call("GET", "/config")["availability"] == {"aws:us-east-1:nvidia-t4": "not_available"}
    with pytest.raises(httpx.HTTPStatusError):
        cloud.set_availability("aws", "us-east-1", "nvidia-t4", "plenty")
    with pytest.raises(httpx.HTTPStatusError):
        cloud.on("resume", availability=[{"vendor": "aws", "region": "us-east-1", "instanceType": "x"}])
    cloud.seed_endpoint("cap", state="paused")
    cloud.on(
        "resume",
        "cap",
        availability=[
            {"vendor": "aws", "region": "us-east-1", "instanceType": "nvidia-a100", "status": "not_available"}
        ],
    )
    assert cloud.api("POST", "/v2/endpoint/demo/cap/resume").status_code == 200
    listing = cloud.api("GET", "/v2/provider/demo").json()
    statuses = {c["id"]: c["status"] for v in listing["vendors"] for r in v["regions"] for c in r["computes"]}
    assert statuses["aws-us-east-1-nvidia-a100-x1"] == "not_available"
