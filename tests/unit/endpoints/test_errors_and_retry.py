from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from airflow_provider_hfep.endpoints import errors
from airflow_provider_hfep.endpoints.retry import RetryPolicy, parse_retry_after


def _response(status: int, *, json=None, text=None, headers=None) -> httpx.Response:
    request = httpx.Request(
        "POST",
        "https://api.endpoints.huggingface.cloud/v2/endpoint/ns?x=1",
        headers={"authorization": "Bearer hf_secret"},
    )
    return httpx.Response(status, json=json, text=text, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (_response(403, json={"error": "body"}, headers={"X-Error-Message": "header wins"}), "header wins"),
        (_response(409, json={"error": "Endpoint name already exists"}), "Endpoint name already exists"),
        (_response(400, json={"error": ["a", "b"]}), "a; b"),
        (_response(401, json={"error_description": "expired"}), "expired"),
        (_response(422, json={"errors": [{"message": "x bad"}, {"message": "y bad"}]}), "x bad; y bad"),
        (_response(500, text="plain failure"), "plain failure"),
        (_response(502, text="<html><body>Bad Gateway</body></html>"), ""),
    ],
)
def test_server_message_order(response, expected):
    assert errors.server_message(response) == expected


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.ValidationFailedError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (422, errors.ValidationFailedError),
        (429, errors.RateLimitedError),
        (500, errors.ServerError),
        (503, errors.ServerError),
        (418, errors.EndpointsApiError),
    ],
)
def test_status_maps_to_typed_error_with_status_message_and_request_id(status, cls):
    error = errors.error_from_response(
        _response(status, json={"error": "why"}, headers={"X-Request-Id": "req-42"})
    )
    assert type(error) is cls
    assert (error.status_code, error.server_message, error.request_id) == (status, "why", "req-42")
    # a status that alone says what to do (a 400/422 points at the service's own words)
    fix = f". Fix: {cls.fix}" if status in (400, 401, 403, 404, 422) else ""
    assert str(error) == f"HTTP {status} for POST /v2/endpoint/ns: why (Request ID: req-42){fix}"
    assert bool(cls.fix) == bool(fix)
    assert "hf_secret" not in str(error)
    assert "x=1" not in str(error)


def test_parse_retry_after():
    assert parse_retry_after(None) is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-2") == 0.0
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("soon") is None


def test_backoff_grows_with_jitter_and_honours_retry_after():
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0, retry_after_max=30.0)
    rng = random.Random(7)
    for retry, cap in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        delays = {policy.delay(retry, rng=rng) for _ in range(50)}
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(delays) > 1  # jittered, not a constant
    assert policy.delay(1, retry_after=12.0) == 12.0
    assert policy.delay(1, retry_after=3600.0) == 30.0
    with pytest.raises(errors.InvalidEndpointArgumentError, match="max_retries: -1 is negative"):
        RetryPolicy(max_retries=-1)
