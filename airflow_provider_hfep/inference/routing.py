"""
Where a batch goes and how hard it may push: the route, the model's served name, the server's limits.

Before the first job is sent, the endpoint's engine decides the route of the task
(:mod:`~airflow_provider_hfep.inference.engines`); servers whose OpenAI routes check the model's name
are asked for it (``/v1/models``); servers that state their limits are asked for them (TGI's and
TEI's ``/info``), so the batch starts at the concurrency and request size the server takes instead
of probing for them. What cannot be read is left unknown: the batch then probes, as with any server.
And the *work key* says which work results belong to, so a retry reuses only its own. No Airflow.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_hfep.endpoints.errors import EndpointsError
from airflow_provider_hfep.endpoints.transport import bounded
from airflow_provider_hfep.inference import engines
from airflow_provider_hfep.inference.tasks import task_for_engine

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_provider_hfep.endpoints.models import InferenceEndpoint
    from airflow_provider_hfep.inference.batch import BatchSettings
    from airflow_provider_hfep.inference.engines import Engine
    from airflow_provider_hfep.inference.shapes import InferenceTask

log = logging.getLogger(__name__)

#: bytes of a server's ``/v1/models`` or ``/info`` answer read at most
SERVER_ANSWER_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ServerLimits:
    """
    What one replica's server says it takes (its ``/info``); ``None`` where it says nothing usable.

    :param max_concurrent_requests: requests in flight before it answers 429.
    :param max_client_batch_size: inputs in one request before it answers 413.
    :param max_batch_tokens: tokens the server batches together (TEI): its own scheduling, reported.
    """

    max_concurrent_requests: int | None = None
    max_client_batch_size: int | None = None
    max_batch_tokens: int | None = None

    @classmethod
    def from_info(cls, info: Any) -> ServerLimits:
        """Read the limits from an ``/info`` answer, keeping only positive integers (anything else: unknown)."""
        if not isinstance(info, dict):
            return cls()

        def count(key: str) -> int | None:
            value = info.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

        return cls(*(count(field.name) for field in dataclasses.fields(cls)))

    def describe(self) -> str:
        """Say what is known, for the task log."""
        known = [
            f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self) if getattr(self, f.name)
        ]
        return ", ".join(known) or "no limits stated"


@dataclass(frozen=True)
class BatchRoute:
    """
    How a batch reaches one endpoint.

    :param engine: the engine the endpoint runs.
    :param task: the task as that engine serves it (route, body, answer).
    :param url: the endpoint's URL, from the API.
    :param served_as: the model's name on the server's OpenAI routes, when it had to be asked.
    :param limits: what each replica's server says it takes.
    :param tasks: every task the batch was routed for, by name (several for an OpenAI batch file,
        whose lines pick their routes); ``task`` is the first.
    :param listed_models: the model names the server lists (``/v1/models``), when it had to be asked.
    """

    engine: Engine
    task: InferenceTask
    url: str
    served_as: str | None = None
    limits: ServerLimits = ServerLimits()
    tasks: Mapping[str, InferenceTask] = field(default_factory=dict)
    listed_models: tuple[str, ...] = ()

    def settings_for(self, settings: BatchSettings, replicas: int) -> BatchSettings:
        """
        Fit the batch's settings to what the server states, for ``replicas`` replicas serving.

        The concurrency starts at the stated capacity (within ``max_concurrency``) and does not probe
        past it; a request carries no more inputs than the server takes.
        """
        limits = self.limits
        changes: dict[str, Any] = {}
        if limits.max_concurrent_requests:
            changes["known_capacity"] = limits.max_concurrent_requests * max(1, replicas)
        if limits.max_client_batch_size and limits.max_client_batch_size < settings.batch_size:
            changes["batch_size"] = limits.max_client_batch_size
        return dataclasses.replace(settings, **changes)

    def describe_work(
        self, endpoint: InferenceEndpoint, *, inputs_sha256: str, inputs: int, parameters: Any
    ) -> dict[str, Any]:
        """
        Say what decides the results: the inputs, task, parameters and model, and the route they took.

        The work key is made of it (:func:`~airflow_provider_hfep.inference.results.work_key`): a retry
        reuses the results of an earlier try only when its work is the same.
        """
        return {
            "inputs_sha256": inputs_sha256,
            "inputs": inputs,
            "task": self.task.name,
            "parameters": parameters,
            "model": endpoint.repository,
            "revision": endpoint.revision,
            "engine": endpoint.image_kind,
            "route": self.task.path,
            "served_as": self.served_as,
        }


def read_server_json(http: httpx.Client, url: str, timeout: float) -> Any:
    """GET a small JSON document from an endpoint's server (bounded in size and time)."""
    response = http.send(http.build_request("GET", url), stream=True)
    try:
        bounded(response, SERVER_ANSWER_BYTES, time.monotonic() + timeout).read()
    finally:
        response.close()
    response.raise_for_status()
    return response.json()


def _listed_models(
    http: httpx.Client, url: str, repository: str, path: str, timeout: float
) -> tuple[str, ...]:
    """
    Name the models as the endpoint's server calls them: what ``path`` lists (``/v1/models``).

    vLLM may serve the model under another name than the repository; the repository alone when the
    list cannot be read.
    """
    try:
        listed = tuple(str(model["id"]) for model in read_server_json(http, f"{url}{path}", timeout)["data"])
        if not listed:
            raise IndexError("no model listed")
        return listed
    except (httpx.HTTPError, EndpointsError, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("Could not read %s (%s): naming the model %s", path, exc, repository)
        return (repository,)


def _stated_limits(http: httpx.Client, url: str, timeout: float) -> ServerLimits:
    try:
        return ServerLimits.from_info(read_server_json(http, url, timeout))
    except (httpx.HTTPError, EndpointsError, ValueError) as exc:
        log.warning(
            "Could not read the server's limits at %s (%s): the batch finds them by probing", url, exc
        )
        return ServerLimits()


def route_batch(
    endpoint: InferenceEndpoint,
    task_name: str,
    http: httpx.Client,
    *,
    timeout: float,
    where: str,
    also: Sequence[str] = (),
) -> BatchRoute:
    """
    Decide how a batch of ``task_name`` reaches ``endpoint``, asking its server what it must.

    A task the engine does not serve, or the model cannot do, is refused here, before any job.

    :param endpoint: the endpoint, as the API gives it (with a URL).
    :param task_name: the task users pass.
    :param also: other tasks the same batch sends (the routes of an OpenAI batch file's lines).
    :param http: a client carrying the endpoint's token (only ever sent to the endpoint's URL).
    :param timeout: seconds each of the server's answers may take.
    :param where: how messages name the endpoint.
    """
    url = str(endpoint.url).rstrip("/")
    engine = engines.engine_for(endpoint.image_kind)
    # Refused before anything is asked of the server: a task the engine or the model cannot do.
    names = dict.fromkeys((task_name, *also))
    tasks = {
        name: task_for_engine(name, endpoint.image_kind, endpoint.repository, where, endpoint.task)
        for name in names
    }
    served_as: str | None = None
    listed: tuple[str, ...] = ()
    if engine.models_path:  # its OpenAI routes check the model's name: ask the server for it
        listed = _listed_models(http, url, endpoint.repository, engine.models_path, timeout)
        served_as = listed[0]
        tasks = {name: task_for_engine(name, endpoint.image_kind, served_as, where) for name in names}
    limits = _stated_limits(http, f"{url}{engine.info_path}", timeout) if engine.info_path else ServerLimits()
    return BatchRoute(
        engine=engine,
        task=tasks[task_name],
        url=url,
        served_as=served_as,
        limits=limits,
        tasks=tasks,
        listed_models=listed,
    )
