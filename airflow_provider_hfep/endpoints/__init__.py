"""The Inference Endpoints management API, in pure Python (no Airflow import)."""

from __future__ import annotations

from airflow_provider_hfep.endpoints.client import AsyncEndpointsClient, EndpointsClient
from airflow_provider_hfep.endpoints.diagnostics import Diagnosis
from airflow_provider_hfep.endpoints.errors import (
    AuthenticationError,
    CapacityError,
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
    CatalogModel,
    ComputeQuota,
    EndpointListing,
    EndpointStatus,
    EndpointType,
    HardwareOption,
    InferenceEndpoint,
    LogLine,
    Replica,
    ScalingMetric,
)
from airflow_provider_hfep.endpoints.payloads import EndpointSpec, EndpointUpdate
from airflow_provider_hfep.endpoints.retry import RetryPolicy

__all__ = [
    "AsyncEndpointsClient",
    "AuthenticationError",
    "CapacityError",
    "CatalogModel",
    "ComputeQuota",
    "Diagnosis",
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
    "LogLine",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Replica",
    "RetryPolicy",
    "ScalingMetric",
    "ServerError",
    "ValidationFailedError",
]
