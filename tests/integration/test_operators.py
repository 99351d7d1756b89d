"""Every lifecycle operator and the sensor, inline and deferred, end to end through dag.test() against
the emulator (deferrals run their trigger inline), including the failure paths."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

import pendulum
import pytest

from airflow_provider_hfep.emulator import Emulator

from tests.specs import GPU_ENDPOINT

pytestmark = pytest.mark.integration


@contextmanager
def acting_when(condition: Callable[[], bool], action: Callable[[], object]) -> Iterator[None]:
    """
    Run ``action`` from a watcher thread once ``condition()`` holds, while the block runs.

    For what no emulator rule can do (restart the emulator's process). The watcher is joined and must
    have acted by the end of the block.
    """
    done, stop = threading.Event(), threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if condition():
                action()
                done.set()
                return
            stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
    assert done.is_set(), "the condition never held"


def before_diagnosis(requests: list[dict]) -> list[dict]:
    """The requests of the wait itself: those before a failed wait reads the endpoint's logs to explain it."""
    diagnosis = next((i for i, r in enumerate(requests) if r["path"].endswith("/logs")), len(requests))
    return requests[:diagnosis]


def gets(cloud, name: str) -> list[dict]:
    return [
        r
        for r in before_diagnosis(cloud.requests("management"))
        if r["method"] == "GET" and r["path"] == f"/v2/endpoint/demo/{name}"
    ]


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_lifecycle_every_operator(run_dag, cloud, mode):
    run = run_dag(f"hfep_lifecycle_{mode}")
    assert run.state == "success", run.output[-3000:]
    assert run.tasks == dict.fromkeys(
        ["create", "ready", "update", "scale_to_zero", "resume", "pause", "delete"], "success"
    )
    name = f"life-{mode}"
    assert run.returns["create"]["status"] == "running"
    assert run.returns["create"]["name"] == name
    assert run.returns["update"]["raw"]["compute"]["scaling"]["maxReplica"] == 2
    assert run.returns["update"]["revision"]  # the templated revision reached the API
    assert run.returns["scale_to_zero"]["status"] == "scaledToZero"
    assert run.returns["resume"]["status"] == "running"
    assert run.returns["pause"]["status"] == "paused"
    assert run.returns["pause"]["url"] is None
    assert run.returns["delete"] == {"name": name, "namespace": "demo", "status": "deleted"}
    assert set(run.links.values()) == {f"https://endpoints.huggingface.co/demo/endpoints/{name}"}
    # create, update and resume waited; in deferred mode through the trigger (the sensor found it running)
    assert run.deferrals() == (0 if mode == "inline" else 3)
    post = [
        r for r in cloud.requests("management") if r["method"] == "POST" and r["path"] == "/v2/endpoint/demo"
    ]
    assert post[0]["json"]["model"]["image"] == {
        "custom": {
            "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
            "healthRoute": "/health",
            "port": 80,
        }
    }
    assert cloud.token not in run.output


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_update_does_not_return_on_the_stale_running(run_dag, cloud, mode):
    run = run_dag(f"hfep_lifecycle_{mode}")
    assert run.state == "success"
    # The update task ended only after the emulator had gone through "updating" and back to running:
    puts = [r for r in cloud.requests("management") if r["method"] == "PUT"]
    reads_after_put = [
        r for r in cloud.requests("management") if r["method"] == "GET" and r["id"] > puts[0]["id"]
    ]
    assert len(reads_after_put) >= 3  # not one read of the stale "running" answer, then done


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_create_fails_fast_when_the_endpoint_fails(run_dag, cloud, mode):
    # the first look finds it deploying; the deployment then fails
    cloud.on("get", "doomed", state="failed", message="Container exited: CUDA out of memory")
    run = run_dag(f"hfep_create_fails_{mode}")
    assert run.tasks == {"create": "failed"}
    assert "failed to deploy: Container exited: CUDA out of memory" in run.output
    assert run.deferrals() == (1 if mode == "deferred" else 0)
    assert len(gets(cloud, "doomed")) == 2  # ended at the look that saw the failure, not at its timeout
    # explained from the endpoint's own log and replicas, in the task log and in the error
    assert "Likely cause: the model does not fit in the instance's memory" in run.output
    assert "Log: " in run.output
    assert "Container exited with code 137" in run.output
    assert "exit code 137" in run.output  # the replica's state
    # the container printed its environment: the secret value this task sent is hidden, in both modes
    assert "MODEL_CONFIG_BLOB=***" in run.output
    assert "blob-value-7f3a9c" not in run.output


def burst(*kinds: str) -> list[dict]:
    """The next management calls fail, one per kind, in this order (then all pass again)."""
    return [{"scope": "management", "kind": kind, "count": 1} for kind in kinds]


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_lifecycle_rides_through_5xx_bursts(run_dag, cloud, mode):
    cloud.set_faults(burst("500", "503", "429", "500"))  # the first call retries four times
    # and a second burst while the create waits for its endpoint (in the trigger, when deferred)
    cloud.on("create", faults=burst("503", "500", "503", "500"))
    run = run_dag(f"hfep_lifecycle_{mode}")
    assert run.state == "success", run.output[-3000:]
    assert set(run.tasks.values()) == {"success"}
    assert len(run.tasks) == 7
    faulted = [r for r in cloud.requests("management") if r["fault"]]
    assert [r["fault"] for r in faulted] == ["500", "503", "429", "500", "503", "500", "503", "500"]


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_a_real_failure_is_still_reported_at_once_between_bursts(run_dag, cloud, mode):
    cloud.seed_endpoint("watched", state="pending")
    cloud.set_state("watched", "failed", "Container exited: CUDA out of memory")
    cloud.set_faults(burst("503", "500", "502"))
    run = run_dag(f"hfep_sensor_{mode}")
    assert run.tasks == {"ready": "failed"}
    assert "failed to deploy: Container exited: CUDA out of memory" in run.output
    assert "AirflowSensorTimeout" not in run.output
    wait = before_diagnosis(cloud.requests("management"))
    assert [r["status"] for r in wait] == [503, 500, 502, 200]  # decided on the first answer


@pytest.mark.parametrize("mode", ["inline", "deferred"])
@pytest.mark.parametrize(
    ("prepare", "text"),
    [
        (lambda cloud: cloud.seed_endpoint("watched", state="paused"), "paused: resume it first"),
        (lambda cloud: cloud.seed_endpoint("watched", state="failed"), "failed to deploy"),
        (lambda cloud: cloud.seed_endpoint("watched", state="scaledToZero"), "scaled to zero"),
        (lambda cloud: None, "not found"),
    ],
    ids=["paused", "failed", "scaled-to-zero", "missing"],
)
def test_sensor_fails_fast_with_a_clear_message(run_dag, cloud, mode, prepare, text):
    prepare(cloud)
    run = run_dag(f"hfep_sensor_{mode}")
    assert run.tasks == {"ready": "failed"}
    assert text in run.output
    assert run.deferrals() == 0  # decided on the first look


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_sensor_waits_for_running_then_succeeds(run_dag, cloud, mode):
    # not yet running at the first look (seeded states stay put), running from the second one on
    cloud.seed_endpoint("watched", state="initializing")
    cloud.on("get", "watched", state="running", after=1)
    run = run_dag(f"hfep_sensor_{mode}")
    assert run.tasks == {"ready": "success"}
    assert run.returns["ready"]["status"] == "running"
    assert run.deferrals() == (1 if mode == "deferred" else 0)
    assert cloud.requests("health")[-1]["status"] == 200


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_sensor_times_out_as_a_sensor_timeout(run_dag, cloud, mode):
    cloud.seed_endpoint("watched", state="initializing")  # seeded states stay put: never running
    run = run_dag(f"hfep_sensor_{mode}")
    assert run.tasks == {"ready": "failed"}
    assert "AirflowSensorTimeout" in run.output
    # explained in both modes: the endpoint's replicas and the likely cause
    assert "Likely cause: " in run.output
    assert "Replica " in run.output


def test_sensor_deletion_mid_wait_is_reported_as_not_found(run_dag, cloud):
    cloud.seed_endpoint("watched", state="initializing")
    cloud.on("get", "watched", vanish=True, after=2)  # gone after the third look
    run = run_dag("hfep_sensor_deferred")
    assert run.tasks == {"ready": "failed"}
    assert "not found" in run.output
    assert "AirflowSensorTimeout" not in run.output


@pytest.mark.parametrize("mode", ["inline", "deferred"])
def test_a_restarted_cloud_that_lost_the_endpoint_is_reported_not_found(run_dag, monkeypatch, mode):
    with Emulator(deploy_seconds=120) as cloud:
        monkeypatch.setenv("AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", cloud.airflow_connection())
        cloud.seed_endpoint("watched", state="pending")
        with acting_when(lambda: len(cloud.requests("management")) >= 3, cloud.restart):
            run = run_dag(f"hfep_sensor_patient_{mode}")
        assert run.tasks == {"ready": "failed"}
        assert "Endpoint watched not found in namespace demo" in run.output, run.output[-3000:]
        assert "AirflowSensorTimeout" not in run.output
        # the restarted cloud's log: the first look after the restart was a 404, and the wait ended there
        assert [r["status"] for r in gets(cloud, "watched")] == [404]


def test_create_twice_fails_with_a_fix(run_dag, cloud):
    run = run_dag("hfep_create_twice")
    assert run.tasks == {"create": "success", "again": "failed"}
    assert (
        "Endpoint demo/twice already exists. Fix: choose another endpoint_name, or set if_exists='reuse'"
        in run.output
    )


def test_a_retry_takes_over_the_endpoint_its_earlier_try_created(run_dag, cloud):
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    logical_date = pendulum.datetime(2026, 3, 1, tz="UTC")
    run_id = DagRun.generate_run_id(
        run_type=DagRunType.MANUAL, logical_date=logical_date, run_after=logical_date
    )
    from airflow_provider_hfep.operators.endpoint import task_instance_tag

    marker = task_instance_tag(
        SimpleNamespace(dag_id="hfep_create_twice", task_id="create", run_id=run_id, map_index=-1)
    )
    cloud.seed_endpoint(
        "twice", state="running", tags=[marker]
    )  # as left by an earlier try that then crashed
    run = run_dag("hfep_create_twice", logical_date=logical_date)
    assert run.tasks == {"create": "success", "again": "failed"}, run.output[
        -4000:
    ]  # "again" is another task: no takeover
    assert "was created by an earlier try of this task: taking it over" in run.output


def test_if_exists_reuse_and_update(run_dag, cloud):
    cloud.seed_endpoint("taken", state="running")
    run = run_dag("hfep_create_if_exists")
    assert run.state == "success", run.output[-2000:]
    assert run.returns["reuse"]["repository"] == "openai-community/gpt2"
    assert run.returns["update"]["repository"] == "openai-community/gpt2-large"
    assert [r["method"] for r in cloud.requests("management") if r["method"] in ("POST", "PUT")] == [
        "POST",
        "POST",
        "PUT",
    ]


def test_update_refuses_while_an_earlier_update_runs(run_dag, cloud):
    cloud.seed_endpoint("busy", state="updating")
    run = run_dag("hfep_update_while_updating")
    assert run.tasks == {"update": "failed"}
    assert (
        "if_updating: endpoint demo/busy is still applying an earlier update. Fix: retry later" in run.output
    )
    assert not [r for r in cloud.requests("management") if r["method"] == "PUT"]


def test_templated_name_is_checked_after_rendering_before_any_call(run_dag, cloud):
    run = run_dag("hfep_templated_name")
    assert run.tasks == {"resume": "failed"}
    assert "endpoint_name: 'Bad_Name' is not a valid endpoint name" in run.output
    assert cloud.requests("management") == []


def test_static_arguments_are_checked_at_parse_time():
    from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
    from airflow_provider_hfep.operators.endpoint import (
        HuggingFaceCreateEndpointOperator,
        HuggingFaceUpdateEndpointOperator,
    )

    spec = GPU_ENDPOINT
    with pytest.raises(InvalidEndpointArgumentError, match="min_replica"):
        HuggingFaceCreateEndpointOperator(
            task_id="c", endpoint_name="e", min_replica=2, max_replica=1, **spec
        )
    with pytest.raises(InvalidEndpointArgumentError, match="type: 'protected'"):
        HuggingFaceCreateEndpointOperator(task_id="c", endpoint_name="e", type="protected", **spec)
    with pytest.raises(InvalidEndpointArgumentError, match="if_exists"):
        HuggingFaceCreateEndpointOperator(task_id="c", endpoint_name="e", if_exists="replace", **spec)
    with pytest.raises(InvalidEndpointArgumentError, match="poll_interval"):
        HuggingFaceUpdateEndpointOperator(task_id="u", endpoint_name="e", max_replica=2, poll_interval=0)
    with pytest.raises(InvalidEndpointArgumentError, match="accelerator"):
        HuggingFaceUpdateEndpointOperator(task_id="u", endpoint_name="e", accelerator="")
    # templated values are not judged before rendering
    HuggingFaceCreateEndpointOperator(
        task_id="c", endpoint_name="{{ params.name }}", task="{{ params.task }}", **spec
    )


def test_sensor_in_reschedule_mode(run_dag, cloud):
    cloud.seed_endpoint("watched", state="initializing")
    cloud.on("get", "watched", state="running", after=1)
    run = run_dag("hfep_sensor_reschedule")
    assert run.tasks == {"ready": "success"}, run.output[-3000:]
    assert run.returns["ready"]["status"] == "running"
    assert run.deferrals() == 0
    assert (
        len([r for r in cloud.requests("management") if r["path"] == "/v2/endpoint/demo/watched"]) >= 2
    )  # it looked again


def test_the_sensor_defers_by_default_whatever_default_deferrable_says(run_dag, cloud, monkeypatch):
    from airflow.sdk import conf

    from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert conf.getboolean("operators", "default_deferrable") is False  # Airflow's own default, too
    assert HuggingFaceEndpointSensor(task_id="ready", endpoint_name="watched").deferrable is True
    # seeded states stay put: it is initializing at the worker's look, running from the next one on
    cloud.seed_endpoint("watched", state="initializing")
    cloud.on("get", "watched", state="running", after=1)
    run = run_dag("hfep_sensor_default")
    assert run.tasks == {"ready": "success"}
    assert run.deferrals() == 1  # it looked once on the worker, then waited in the triggerer
    assert "Pausing task as DEFERRED" in run.output


def test_the_sensor_still_pokes_when_asked():
    from airflow_provider_hfep.endpoints import InvalidEndpointArgumentError
    from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

    assert HuggingFaceEndpointSensor(task_id="r", endpoint_name="e", deferrable=False).deferrable is False
    with pytest.raises(InvalidEndpointArgumentError, match="start_from_trigger: needs a deferrable sensor"):
        HuggingFaceEndpointSensor(task_id="r", endpoint_name="e", deferrable=False, start_from_trigger=True)
    sensor = HuggingFaceEndpointSensor(task_id="r", endpoint_name="e", start_from_trigger=True, timeout=60)
    assert sensor.start_trigger_args.trigger_kwargs["endpoint_name"] == "e"
    assert sensor.start_trigger_args.trigger_kwargs["end_time"] is None  # bounded by Airflow's timeout
    assert sensor.start_trigger_args.timeout.total_seconds() == 60


class _TaskInstance:
    dag_id, task_id, run_id, map_index = "kill", "task", "manual__1", -1

    def xcom_push(self, key: str, value: object) -> None:
        pass


def test_on_kill_stops_only_what_this_try_started(cloud):
    from airflow_provider_hfep.operators.endpoint import (
        HuggingFaceCreateEndpointOperator,
        HuggingFaceResumeEndpointOperator,
    )

    context = {"ti": _TaskInstance(), "task_instance": _TaskInstance()}
    resume = HuggingFaceResumeEndpointOperator(task_id="resume", endpoint_name="watched")
    resume.on_kill()  # killed before it started anything: nothing to stop
    assert cloud.requests() == []
    cloud.seed_endpoint("watched", state="paused")
    resume.execute(context)
    assert cloud.state("watched") in ("pending", "initializing")
    resume.on_kill()  # what Airflow's SIGTERM (or execution_timeout) calls on the worker
    assert cloud.state("watched") == "paused"
    cloud.seed_endpoint("theirs", state="running")
    reuse = HuggingFaceCreateEndpointOperator(
        task_id="create", endpoint_name="theirs", if_exists="reuse", wait_for_completion=False, **GPU_ENDPOINT
    )
    reuse.execute(context)
    reuse.on_kill()  # it found the endpoint running and started nothing: a kill leaves it alone
    assert cloud.state("theirs") == "running"
    left = HuggingFaceResumeEndpointOperator(task_id="resume", endpoint_name="watched", on_kill_action="none")
    left.execute(context)
    left.on_kill()
    assert cloud.state("watched") in ("pending", "initializing")
    assert [r["path"] for r in cloud.requests("management") if r["path"].endswith("/pause")] == [
        "/v2/endpoint/demo/watched/pause"
    ]


def test_a_retry_resumes_its_own_endpoint_that_a_kill_paused(cloud):
    from airflow_provider_hfep.operators.endpoint import HuggingFaceCreateEndpointOperator, task_instance_tag

    context = {"ti": _TaskInstance(), "task_instance": _TaskInstance()}
    create = HuggingFaceCreateEndpointOperator(
        task_id="create", endpoint_name="mine", wait_for_completion=False, **GPU_ENDPOINT
    )
    cloud.seed_endpoint(
        "mine", state="paused", tags=[task_instance_tag(context["ti"])]
    )  # its earlier try, killed
    assert create.execute(context)["status"] in ("pending", "initializing")
    assert [(r["method"], r["path"]) for r in cloud.requests("management") if r["method"] == "POST"] == [
        ("POST", "/v2/endpoint/demo"),  # 409: it exists
        ("POST", "/v2/endpoint/demo/mine/resume"),
    ]
