"""The Inference Endpoints management API, in pure Python (no Airflow import)."""

from __future__ import annotations

from airflow_provider_hfep.endpoints.client import AsyncEndpointsClient, EndpointsClient
from airflow_provider_hfep.endpoints.errors import (
    AuthenticationError,
    ConflictError,
    EndpointFailedError,
    EndpointPausedError,
    EndpointsApiError,
    EndpointScaledToZeroError,
    EndpointsError,
    EndpointStateError,
    EndpointsTimeoutError,
    EndpointsTransportError,
    EndpointUpdateFailedError,
    EndpointWaitTimeoutError,
    InvalidEndpointArgumentError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ValidationFailedError,
)
from airflow_provider_hfep.endpoints.models import (
    EndpointListing,
    EndpointStatus,
    EndpointType,
    HardwareOption,
    InferenceEndpoint,
    ScalingMetric,
)
from airflow_provider_hfep.endpoints.payloads import EndpointSpec, EndpointUpdate
from airflow_provider_hfep.endpoints.retry import RetryPolicy

__all__ = [
    "AsyncEndpointsClient",
    "AuthenticationError",
    "ConflictError",
    "EndpointFailedError",
    "EndpointListing",
    "EndpointPausedError",
    "EndpointScaledToZeroError",
    "EndpointSpec",
    "EndpointStateError",
    "EndpointStatus",
    "EndpointType",
    "EndpointUpdate",
    "EndpointUpdateFailedError",
    "EndpointWaitTimeoutError",
    "EndpointsApiError",
    "EndpointsClient",
    "EndpointsError",
    "EndpointsTimeoutError",
    "EndpointsTransportError",
    "HardwareOption",
    "InferenceEndpoint",
    "InvalidEndpointArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RetryPolicy",
    "ScalingMetric",
    "ServerError",
    "ValidationFailedError",
]
