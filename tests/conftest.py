"""Shared fixtures. The emulator fixtures (``hfep_emulator``, ``hfep_emulator_session``) come from the
provider's own pytest plugin, the one users get too."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import huggingface_hub
import pytest
from huggingface_hub import HfApi

# dag.test() serializes the DAG by parsing the DAGs folder: the tests' DAGs live in tests/dags.
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).parent / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow_provider_hfep.endpoints import AsyncEndpointsClient, EndpointsClient, EndpointSpec, RetryPolicy

from tests.specs import CPU_ENDPOINT

if TYPE_CHECKING:
    from airflow_provider_hfep.emulator import Emulator

FAST_RETRY = RetryPolicy(max_retries=4, backoff_base=0.01, backoff_max=0.05)


def make_spec(name: str = "test-ep", **overrides) -> EndpointSpec:
    """A small valid spec (the reference's minimal create call)."""
    return EndpointSpec(name=name, **{**CPU_ENDPOINT, **overrides})


def client_kwargs(cloud: Emulator, **overrides) -> dict:
    return {
        "api_url": cloud.url,
        "hub_url": cloud.url,
        "catalog_url": cloud.catalog_url,
        "retry": FAST_RETRY,
        **overrides,
    }


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


class _Blocking:
    """Runs an AsyncEndpointsClient's coroutines to completion on a private loop, so one test body
    checks both clients."""

    def __init__(self, client: AsyncEndpointsClient, loop: asyncio.AbstractEventLoop) -> None:
        self._client, self._loop = client, loop

    def __getattr__(self, name):
        method = getattr(self._client, name)
        return lambda *args, **kwargs: self._loop.run_until_complete(method(*args, **kwargs))


@pytest.fixture(params=["sync", "async"])
def make_client(request, cloud):
    """Factory of clients of the parametrized flavour, closed after the test."""
    closers = []
    loop = asyncio.new_event_loop()

    def make(token: str | None = None, **overrides):
        kwargs = client_kwargs(cloud, **overrides)
        if request.param == "sync":
            client = EndpointsClient(token or cloud.token, **kwargs)
            closers.append(client.close)
            return client
        client = AsyncEndpointsClient(token or cloud.token, **kwargs)
        closers.append(lambda: loop.run_until_complete(client.aclose()))
        return _Blocking(client, loop)

    yield make
    for close in closers:
        close()
    loop.close()


@pytest.fixture
def api(make_client):
    return make_client()


@pytest.fixture
def hub(cloud: Emulator, monkeypatch: pytest.MonkeyPatch) -> HfApi:
    """The real huggingface_hub client, its every management call, whoami and token sent to the emulator."""
    monkeypatch.setattr(huggingface_hub.constants, "INFERENCE_ENDPOINTS_ENDPOINT", f"{cloud.url}/v2")
    # each line of the library at its own catalog path (1.x: /api/catalog; 2.4: /api/v1/catalog), on the emulator
    catalog_path = urlsplit(huggingface_hub.constants.INFERENCE_CATALOG_ENDPOINT).path
    monkeypatch.setattr(huggingface_hub.constants, "INFERENCE_CATALOG_ENDPOINT", f"{cloud.url}{catalog_path}")
    monkeypatch.setenv(
        "HF_TOKEN", cloud.token
    )  # the personal listing of namespace="*" uses the ambient token
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return HfApi(endpoint=cloud.url, token=cloud.token)


@dataclass
class Run:
    """What a dag.test() run left: its state, each task's state, return value and link, and the output."""

    state: str
    tasks: dict[str, str]
    returns: dict[str, Any]
    links: dict[str, Any]
    output: str
    run_id: str

    def deferrals(self) -> int:
        return self.output.count("Pausing task as DEFERRED")


@pytest.fixture(scope="session")
def dagbag():
    """Every DAG of tests/dags, parsed once."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    assert not bag.import_errors
    return bag


@pytest.fixture
def run_dag(dagbag, capfd, caplog):
    """Run a DAG of tests/dags with dag.test() (triggers inline) and collect what it left."""
    from airflow.models import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    def run(dag_id: str, logical_date=None, conf: dict[str, Any] | None = None) -> Run:
        capfd.readouterr()
        caplog.clear()
        dagrun = dagbag.get_dag(dag_id).test(logical_date=logical_date, run_after=logical_date, run_conf=conf)
        out, err = capfd.readouterr()
        # stdlib loggers (ours among them) write to the stream pytest held when logging was set up,
        # not to this fixture's: their records are collected by caplog instead
        logged = caplog.text
        with create_session() as session:
            tis = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=dagrun.run_id).all()
            xcoms = session.query(XComModel).filter_by(dag_id=dag_id, run_id=dagrun.run_id).all()
            tasks = {ti.task_id: str(ti.state) for ti in tis}
            returns = {x.task_id: x.value for x in xcoms if x.key == "return_value"}
            links = {x.task_id: x.value for x in xcoms if x.key == "_link_HuggingFaceEndpointLink"}
        return Run(str(dagrun.state), tasks, returns, links, out + err + logged, dagrun.run_id)

    return run
