"""
Airflow 3.4's retry policies for this provider's tasks: when the hardware is not there, ask again later.

.. code-block:: python

    HuggingFaceResumeEndpointOperator(
        task_id="resume", endpoint_name="batch-endpoint", retry_policy=reschedule_on_capacity()
    )

A start refused for capacity (:class:`~airflow_provider_hfep.endpoints.CapacityError`: the quota is
used up, or the hardware is not available now; refused before anything was started) puts the task
``up_for_reschedule``: it runs again later without using one of its retries. The provider's other
verdicts fail the task at once, as without a policy. Rescheduling from a policy is new in Airflow 3.4
(3.3's policies retry or fail; 3.0 to 3.2 have none): before, ``retries`` and ``retry_delay`` ask
again, each refusal taking one retry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow import __version__ as airflow_version

from airflow_provider_hfep._compat import AIRFLOW_V_3_4_PLUS
from airflow_provider_hfep.endpoints.errors import CapacityError, EndpointsError, InvalidEndpointArgumentError

__all__ = ["reschedule_on_capacity"]


def reschedule_on_capacity(
    every: timedelta = timedelta(minutes=10), give_up_after: timedelta = timedelta(hours=2)
) -> Any:
    """
    Make a retry policy that reschedules a task whose start was refused for capacity (Airflow 3.4+).

    On an older Airflow it refuses, naming what to use instead.

    :param every: how long to wait before asking again. Default 10 minutes.
    :param give_up_after: how long after the first refusal to keep asking; then the refusal fails the
        task (or takes a retry, if it has any). Default 2 hours.
    :return: an Airflow ``ExceptionRetryPolicy``, for a task's ``retry_policy``.
    """
    if not AIRFLOW_V_3_4_PLUS:
        raise InvalidEndpointArgumentError(
            "retry_policy",
            f"Airflow {airflow_version} cannot reschedule a task from its retry policy (Airflow 3.4 can)",
            "use retries and retry_delay: each capacity refusal then takes one retry",
        )
    for field, value in (("every", every), ("give_up_after", give_up_after)):
        if not isinstance(value, timedelta) or value <= timedelta(0):
            raise InvalidEndpointArgumentError(
                field, f"{value!r} is not a positive timedelta", "use e.g. timedelta(minutes=10)"
            )
    from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

    return ExceptionRetryPolicy(
        rules=[
            RetryRule(  # type: ignore[call-arg]  # mypy reads Airflow 3.3, without reschedule_timeout
                exception=CapacityError,
                action=RetryAction.RESCHEDULE,  # type: ignore[attr-defined]  # 3.4
                retry_delay=every,
                reschedule_timeout=give_up_after,
                reason="no capacity for the endpoint's hardware now: asking again later, without using a retry",
            ),
            # the provider's other verdicts would be the same on a retry (see target.final_verdicts)
            RetryRule(exception=EndpointsError, action=RetryAction.FAIL),
        ]
    )
