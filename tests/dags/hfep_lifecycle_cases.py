"""DAGs the operator tests run with dag.test() against the emulator (the fixture sets the connection).

One DAG per waiting mode walks an endpoint through every lifecycle operator and the sensor; small
DAGs isolate the failure paths. Polls are short: the emulator deploys in 0.5 s.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointFromCatalogOperator,
    HuggingFaceCreateEndpointOperator,
    HuggingFaceDeleteEndpointOperator,
    HuggingFacePauseEndpointOperator,
    HuggingFaceResumeEndpointOperator,
    HuggingFaceScaleToZeroEndpointOperator,
    HuggingFaceUpdateEndpointOperator,
)
from airflow_provider_hfep.operators.logs import HuggingFaceEndpointLogsOperator
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

from tests.specs import GPU_ENDPOINT

START = pendulum.datetime(2026, 1, 1, tz="UTC")
FAST = {"poll_interval": 0.1, "timeout": 30}
SPEC = {
    **GPU_ENDPOINT,
    "task": "text-generation",
    "custom_image": {
        "url": "ghcr.io/huggingface/text-generation-inference:3.1.1",
        "healthRoute": "/health",
        "port": 80,
    },
}

for deferrable in (False, True):
    mode = "deferred" if deferrable else "inline"
    with DAG(f"hfep_lifecycle_{mode}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        name = f"life-{mode}"
        create = HuggingFaceCreateEndpointOperator(
            task_id="create", endpoint_name=name, deferrable=deferrable, **SPEC, **FAST
        )
        ready = HuggingFaceEndpointSensor(
            task_id="ready", endpoint_name=name, deferrable=deferrable, poke_interval=0.1, timeout=30
        )
        update = HuggingFaceUpdateEndpointOperator(
            task_id="update",
            endpoint_name=name,
            revision="{{ run_id | replace(':', '') | truncate(8, True, '') }}",
            max_replica=2,
            update_settle_seconds=5,
            deferrable=deferrable,
            **FAST,
        )
        scale = HuggingFaceScaleToZeroEndpointOperator(
            task_id="scale_to_zero",
            endpoint_name=name,
            wait_for_completion=True,
            deferrable=deferrable,
            **FAST,
        )
        resume = HuggingFaceResumeEndpointOperator(
            task_id="resume", endpoint_name=name, wait_for_completion=True, deferrable=deferrable, **FAST
        )
        pause = HuggingFacePauseEndpointOperator(
            task_id="pause", endpoint_name=name, wait_for_completion=True, deferrable=deferrable, **FAST
        )
        delete = HuggingFaceDeleteEndpointOperator(
            task_id="delete", endpoint_name=name, wait_for_completion=True, deferrable=deferrable, **FAST
        )
        create >> ready >> update >> scale >> resume >> pause >> delete

    # The endpoint is made to fail (through the emulator's control API) while the create waits.
    with DAG(f"hfep_create_fails_{mode}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        HuggingFaceCreateEndpointOperator(
            task_id="create",
            endpoint_name="doomed",
            deferrable=deferrable,
            # a secret not named like one: only knowing its value can hide it in the echoed log
            secrets={"MODEL_CONFIG_BLOB": "blob-value-7f3a9c"},
            **SPEC,
            **FAST,
        )

    # A model of the catalog deployed, waited for, its log read into the task log, then deleted.
    with DAG(f"hfep_catalog_{mode}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        name = f"zephyr-{mode}"
        deploy = HuggingFaceCreateEndpointFromCatalogOperator(
            task_id="deploy",
            endpoint_name=name,
            repo_id="{{ dag_run.conf.get('repo_id', 'HuggingFaceH4/zephyr-7b-beta') }}",
            deferrable=deferrable,
            **FAST,
        )
        logs = HuggingFaceEndpointLogsOperator(task_id="logs", endpoint_name=name, tail=20)
        delete = HuggingFaceDeleteEndpointOperator(
            task_id="delete", endpoint_name=name, wait_for_completion=True, deferrable=deferrable, **FAST
        )
        deploy >> logs >> delete

    # The sensor on an endpoint the test prepared (paused, failed, missing, slow...).
    with DAG(f"hfep_sensor_{mode}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        HuggingFaceEndpointSensor(
            task_id="ready", endpoint_name="watched", deferrable=deferrable, poke_interval=0.1, timeout=3
        )

    # The same with time to ride out a restart of the cloud.
    with DAG(f"hfep_sensor_patient_{mode}", schedule=None, start_date=START, catchup=False, tags=["test"]):
        HuggingFaceEndpointSensor(
            task_id="ready", endpoint_name="watched", deferrable=deferrable, poke_interval=0.2, timeout=60
        )

with DAG("hfep_create_twice", schedule=None, start_date=START, catchup=False, tags=["test"]):
    first = HuggingFaceCreateEndpointOperator(
        task_id="create", endpoint_name="twice", wait_for_completion=False, **SPEC
    )
    (
        HuggingFaceCreateEndpointOperator(
            task_id="again", endpoint_name="twice", wait_for_completion=False, **SPEC
        )
        << first
    )

with DAG("hfep_create_if_exists", schedule=None, start_date=START, catchup=False, tags=["test"]):
    reuse = HuggingFaceCreateEndpointOperator(
        task_id="reuse", endpoint_name="taken", if_exists="reuse", wait_for_completion=False, **SPEC
    )
    update = HuggingFaceCreateEndpointOperator(
        task_id="update",
        endpoint_name="taken",
        if_exists="update",
        update_settle_seconds=5,
        **{**SPEC, "repository": "openai-community/gpt2-large"},
        **FAST,
    )
    reuse >> update

with DAG("hfep_update_while_updating", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceUpdateEndpointOperator(task_id="update", endpoint_name="busy", max_replica=3, **FAST)

with DAG(
    "hfep_templated_name",
    schedule=None,
    start_date=START,
    catchup=False,
    params={"name": "Bad_Name"},
    tags=["test"],
):
    HuggingFaceResumeEndpointOperator(task_id="resume", endpoint_name="{{ params.name }}")

with DAG("hfep_sensor_reschedule", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceEndpointSensor(
        task_id="ready",
        endpoint_name="watched",
        deferrable=False,
        mode="reschedule",
        poke_interval=0.2,
        timeout=20,
    )

# The sensor as most DAGs write it: no deferrable argument.
with DAG("hfep_sensor_default", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceEndpointSensor(task_id="ready", endpoint_name="watched", poke_interval=0.1, timeout=30)

# Start operators on hardware the namespace has no quota left for (the test sets the quota).
with DAG("hfep_quota", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceCreateEndpointOperator(task_id="create", endpoint_name="over-quota", **SPEC, **FAST)
    HuggingFaceResumeEndpointOperator(task_id="resume", endpoint_name="sleeping", **FAST)
    HuggingFaceUpdateEndpointOperator(
        task_id="update", endpoint_name="small", instance_type="nvidia-l4", instance_size="x4", **FAST
    )

# The log of an endpoint the test prepared, filtered.
with DAG("hfep_logs", schedule=None, start_date=START, catchup=False, tags=["test"]):
    HuggingFaceEndpointLogsOperator(task_id="errors", endpoint_name="crashed", level="error")
    HuggingFaceEndpointLogsOperator(task_id="all", endpoint_name="crashed", tail=50)
