from __future__ import annotations

import copy

import pytest

from airflow_provider_hfep.endpoints import errors
from airflow_provider_hfep.endpoints.models import EndpointStatus, InferenceEndpoint
from airflow_provider_hfep.endpoints.waiting import (
    Outcome,
    WatchResult,
    assess,
    needs_health_check,
    raise_for_result,
)

from tests.unit.endpoints.test_models import RAW_RUNNING


def endpoint(state: str, message: str = "") -> InferenceEndpoint:
    raw = copy.deepcopy(RAW_RUNNING)
    raw["status"].update(state=state, message=message)
    return InferenceEndpoint.from_raw(raw, "ns")


RUNNING = EndpointStatus.RUNNING


@pytest.mark.parametrize(
    ("state", "target", "health", "outcome"),
    [
        ("running", RUNNING, 200, Outcome.SUCCESS),
        ("running", RUNNING, None, Outcome.SUCCESS),
        ("running", RUNNING, 503, Outcome.WAITING),
        ("running", RUNNING, 0, Outcome.WAITING),
        ("pending", RUNNING, None, Outcome.WAITING),
        ("initializing", RUNNING, None, Outcome.WAITING),
        ("updating", RUNNING, None, Outcome.WAITING),
        ("failed", RUNNING, None, Outcome.FAILED),
        ("updateFailed", RUNNING, None, Outcome.UPDATE_FAILED),
        ("paused", RUNNING, None, Outcome.PAUSED),
        ("scaledToZero", RUNNING, None, Outcome.SCALED_TO_ZERO),
        ("paused", EndpointStatus.PAUSED, None, Outcome.SUCCESS),
        ("running", EndpointStatus.PAUSED, None, Outcome.WAITING),
        ("failed", EndpointStatus.PAUSED, None, Outcome.FAILED),
        ("scaledToZero", EndpointStatus.SCALED_TO_ZERO, None, Outcome.SUCCESS),
    ],
)
def test_assess(state, target, health, outcome):
    assert assess(endpoint(state), target, health).outcome is outcome


def finished(progress, endpoint) -> WatchResult:
    return WatchResult(
        progress.outcome, endpoint.name, "ns", str(endpoint.status), progress.message, endpoint.url, endpoint
    )


def test_failure_messages_carry_the_server_reason_and_raise_typed_errors():
    failed = endpoint("failed", "Container crashed: CUDA out of memory")
    progress = assess(failed, RUNNING)
    assert (
        progress.message
        == "Endpoint my-endpoint-name failed to deploy: Container crashed: CUDA out of memory"
    )
    with pytest.raises(errors.EndpointFailedError, match="CUDA out of memory") as info:
        raise_for_result(finished(progress, failed))
    assert info.value.state == "failed"
    paused = endpoint("paused")
    with pytest.raises(errors.EndpointPausedError, match="paused: resume it first"):
        raise_for_result(finished(assess(paused, RUNNING), paused))
    with pytest.raises(errors.EndpointUpdateFailedError):
        raise_for_result(finished(assess(endpoint("updateFailed"), RUNNING), endpoint("updateFailed")))
    raise_for_result(
        finished(assess(endpoint("running"), RUNNING), endpoint("running"))
    )  # success raises nothing


def test_result_endings_map_to_errors_and_events_are_json():
    base = dict(endpoint_name="e", namespace="ns", state="pending", message="late", url=None)
    with pytest.raises(errors.EndpointWaitTimeoutError, match="late"):
        raise_for_result(WatchResult(Outcome.TIMEOUT, **base))
    gone = errors.NotFoundError(404, "gone")
    with pytest.raises(errors.NotFoundError) as not_found:
        raise_for_result(WatchResult(Outcome.NOT_FOUND, **base, error=gone))
    assert not_found.value is gone  # the API's own error, with its status and request id
    with pytest.raises(errors.NotFoundError, match="late") as rebuilt:  # after a deferral: from the event
        raise_for_result(WatchResult(Outcome.NOT_FOUND, **base))
    assert rebuilt.value.status_code == 404
    denied = errors.PermissionDeniedError(403, "not yours")
    with pytest.raises(errors.PermissionDeniedError) as kept:
        raise_for_result(WatchResult(Outcome.ERROR, **base, error=denied))
    assert kept.value is denied
    with pytest.raises(errors.EndpointsError, match="^late$") as generic:
        raise_for_result(WatchResult(Outcome.ERROR, **base))
    assert type(generic.value) is errors.EndpointsError  # an error event carries no more than its text
    event = WatchResult(Outcome.TIMEOUT, **base, error=gone).to_event()
    assert event == {"status": "timeout", **base}


def test_health_is_checked_only_for_running_awaited_as_running():
    assert needs_health_check(endpoint("running"), RUNNING, True)
    assert not needs_health_check(endpoint("running"), RUNNING, False)
    assert not needs_health_check(endpoint("initializing"), RUNNING, True)
    assert not needs_health_check(endpoint("paused"), EndpointStatus.PAUSED, True)
