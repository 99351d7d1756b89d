"""
Airflow can fail a deferred task whose trigger fires within seconds (a stale executor event arriving
after the resume: apache/airflow#66374, #67287, #71580, #72716). A deferred wait therefore gets quick
retries unless its DAG sets them, and those retries are for Airflow's failures only: the provider's
own verdicts stay final.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_hfep._compat import AirflowFailException
from airflow_provider_hfep.endpoints.errors import EndpointFailedError
from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFacePauseEndpointOperator,
)
from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor
from airflow_provider_hfep.target import RESUME_RACE_RETRIES, RESUME_RACE_RETRY_DELAY

from tests.specs import GPU_ENDPOINT

EVENT = {
    "status": "failed",
    "endpoint_name": "ep",
    "namespace": "demo",
    "state": "failed",
    "message": "OOM",
    "url": None,
}


def dag(**default_args) -> DAG:
    return DAG("race", schedule=None, start_date=pendulum.datetime(2026, 1, 1), default_args=default_args)


def test_a_deferred_wait_gets_quick_retries_unless_the_dag_sets_its_own():
    with dag():
        sensor = HuggingFaceEndpointSensor(task_id="ready", endpoint_name="ep")
        create = HuggingFaceCreateEndpointOperator(
            task_id="create", endpoint_name="ep", deferrable=True, **GPU_ENDPOINT
        )
        inline = HuggingFaceCreateEndpointOperator(
            task_id="inline", endpoint_name="ep", deferrable=False, **GPU_ENDPOINT
        )
        pause = HuggingFacePauseEndpointOperator(task_id="pause", endpoint_name="ep", deferrable=True)
        mine = HuggingFaceEndpointSensor(task_id="mine", endpoint_name="ep", retries=0)
    assert (sensor.retries, sensor.retry_delay) == (RESUME_RACE_RETRIES, RESUME_RACE_RETRY_DELAY)
    assert create.retries == RESUME_RACE_RETRIES
    assert (inline.retries, pause.retries, mine.retries) == (0, 0, 0)  # no deferred wait, or the DAG's own
    with dag(retries=5, retry_delay=timedelta(minutes=1)):
        from_defaults = HuggingFaceEndpointSensor(task_id="ready", endpoint_name="ep")
    assert (from_defaults.retries, from_defaults.retry_delay) == (5, timedelta(minutes=1))
    assert not from_defaults.retries_for_airflow_only


def test_the_providers_own_verdict_is_final_under_those_retries(monkeypatch):
    monkeypatch.setattr(HuggingFaceEndpointSensor, "explain", lambda self, result: result)  # no API here
    with dag():
        defaulted = HuggingFaceEndpointSensor(task_id="ready", endpoint_name="ep")
        chosen = HuggingFaceEndpointSensor(task_id="chosen", endpoint_name="ep", retries=3)
    with pytest.raises(AirflowFailException, match="EndpointFailedError: .*OOM") as final:
        defaulted.execute_complete({}, EVENT)
    assert isinstance(final.value.__cause__, EndpointFailedError)
    with pytest.raises(EndpointFailedError):  # the DAG chose retries: Airflow's usual rules
        chosen.execute_complete({}, EVENT)


def test_a_task_with_a_retry_policy_gets_the_providers_errors_as_they_are(monkeypatch):
    """Airflow never shows a retry policy an AirflowFailException: with one, the policy decides."""
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    monkeypatch.setattr(HuggingFaceEndpointSensor, "explain", lambda self, result: result)  # no API here
    policy = ExceptionRetryPolicy(rules=[RetryRule(exception=EndpointFailedError, action=RetryAction.FAIL)])
    with dag():
        governed = HuggingFaceEndpointSensor(task_id="ready", endpoint_name="ep", retry_policy=policy)
    assert governed.retries_for_airflow_only  # the quick retries stay for Airflow's own failures
    with pytest.raises(EndpointFailedError):
        governed.execute_complete({}, EVENT)


def test_rescheduling_on_capacity_needs_airflow_3_4_and_says_so():
    from airflow_provider_hfep._compat import AIRFLOW_V_3_4_PLUS
    from airflow_provider_hfep.retry_policies import reschedule_on_capacity

    if AIRFLOW_V_3_4_PLUS:  # make compat checks it for real on 3.4
        pytest.skip("the refusal is for Airflow before 3.4")
    with pytest.raises(
        ValueError, match=r"retry_policy: Airflow 3\.\d+\.\d+ cannot reschedule .*Fix: use retries"
    ):
        reschedule_on_capacity()
