"""Shared fixtures. The emulator fixtures (``hfep_emulator``, ``hfep_emulator_session``) come from the
provider's own pytest plugin, the one users get too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# dag.test() serializes the DAG by parsing the DAGs folder: the tests' DAGs live in tests/dags.
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).parent / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from typing import TYPE_CHECKING

from airflow_provider_hfep.endpoints import AsyncEndpointsClient, EndpointsClient, EndpointSpec, RetryPolicy

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator import Emulator

FAST_RETRY = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_max=0.05)


def make_spec(name: str = "test-ep", **overrides) -> EndpointSpec:
    """A small valid spec (the reference's minimal create call)."""
    args = dict(
        name=name,
        repository="openai-community/gpt2",
        framework="pytorch",
        accelerator="cpu",
        instance_size="x2",
        instance_type="intel-spr",
        region="us-east-1",
        vendor="aws",
    )
    args.update(overrides)
    return EndpointSpec(**args)


def client_kwargs(cloud: Emulator, **overrides) -> dict:
    return {"api_url": cloud.url, "hub_url": cloud.url, "retry": FAST_RETRY, **overrides}


@pytest.fixture
def cloud(hfep_emulator: Emulator) -> Emulator:
    """The session emulator, reset for this test."""
    return hfep_emulator


@pytest.fixture
def client(cloud: Emulator):
    with EndpointsClient(cloud.token, **client_kwargs(cloud)) as sync_client:
        yield sync_client


@pytest.fixture
async def aclient(cloud: Emulator):
    async with AsyncEndpointsClient(cloud.token, **client_kwargs(cloud)) as async_client:
        yield async_client
