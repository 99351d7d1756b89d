"""Batch inference on a running endpoint: every job once, in order, nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import threading
from typing import TYPE_CHECKING, Any

import httpx
from airflow.sdk import BaseOperator

from airflow_provider_hfep.endpoints.arguments import check_choice, check_count, check_seconds
from airflow_provider_hfep.endpoints.costs import (
    Budget,
    CapFired,
    WindowCaps,
    next_cap,
    opened_at,
    price_per_hour,
    spend_of,
)
from airflow_provider_hfep.endpoints.errors import (
    BudgetExceededError,
    EndpointsError,
    InvalidEndpointArgumentError,
)
from airflow_provider_hfep.endpoints.models import EndpointStatus, InferenceEndpoint, Replica
from airflow_provider_hfep.endpoints.transport import tls_verification, token_may_travel
from airflow_provider_hfep.endpoints.waiting import Outcome, WatchResult, assess, raise_for_result
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.inference import openai_batch
from airflow_provider_hfep.inference.batch import BatchSettings, ItemResult, batch_client, run_batch
from airflow_provider_hfep.inference.inputs import (
    InputsDigest,
    checked_jobs,
    first_job,
    jobs_of_lines,
    jobs_of_list,
)
from airflow_provider_hfep.inference.openai_batch import RequestLines, ResultLines, request_task
from airflow_provider_hfep.inference.results import (
    INDEXED,
    CommitSettings,
    RecordFormat,
    ResultStore,
    store_identity,
    store_scheme,
)
from airflow_provider_hfep.inference.routing import BatchRoute, route_batch
from airflow_provider_hfep.inference.structured import (
    GENERATING_TASKS,
    OutputSchema,
    asks_structure,
    check_response_format,
    structured_task,
)
from airflow_provider_hfep.inference.tasks import InferenceTask, get_task
from airflow_provider_hfep.target import EndpointTarget

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

    from airflow.sdk import Context, ObjectStoragePath

ON_ITEM_ERROR = ("fail", "record")
#: ``auto``: OpenAI batch lines when the first job is one (an object with ``custom_id`` and ``url``)
INPUT_FORMATS = ("auto", "jobs", openai_batch.FORMAT)
DEFAULT_MAX_XCOM_BYTES = 1024 * 1024
#: bytes of one input line read at most, by default (a long document is well under it)
DEFAULT_MAX_INPUT_BYTES = 4 * 1024 * 1024


class _XComTooLargeError(EndpointsError):
    pass


def results_uri(path: ObjectStoragePath) -> str:
    """Name results as an Asset or a lineage dataset does: the store's scheme and path, no connection id."""
    return f"{store_scheme(path)}://{path.path}"


def emit_results_asset(
    context: Context, outlets: Sequence[Any], path: ObjectStoragePath, *, results: int, failed: int
) -> None:
    """
    Mark the results ready for downstream DAGs, through the task's outlets.

    ``output_path`` is rendered at run time, so the Asset it names cannot be declared when the DAG is
    parsed: declare an ``AssetAlias`` as outlet and each run adds ``Asset(<output uri>)`` to it; a
    declared ``Asset`` gets the output's URI in its event's ``extra``.
    """
    from airflow.sdk import Asset, AssetAlias

    # output_path as given (with its connection: what ObjectStoragePath reads back), the URI without it
    uri = results_uri(path)
    extra: dict[str, Any] = {
        "output_path": str(path),
        "uri": uri,
        "results": results,  # lines in the file (earlier tries' included)
        "failed": failed,
    }
    for outlet in outlets:
        if isinstance(outlet, AssetAlias):
            context["outlet_events"][outlet].add(Asset(uri=uri), extra=extra)
        elif isinstance(outlet, Asset):
            context["outlet_events"][outlet].extra.update(extra)


#: requests in flight per replica the endpoint may scale to, unless max_concurrency says otherwise
CONCURRENCY_PER_REPLICA = 32


class HuggingFaceEndpointInferenceOperator(EndpointTarget, BaseOperator):
    """
    Send a batch of jobs to a running endpoint and return every result, in input order.

    The endpoint's URL comes from the API (never from a templated string), and the token is sent only
    there. Requests run concurrently on one HTTP client: the concurrency adapts to what the endpoint
    accepts (a 429 lowers it to the endpoint's capacity, successes probe higher again); 429, 502, 503,
    504, timeouts and resets are retried with backoff honouring ``Retry-After``; a scaled-to-zero
    endpoint is woken and waited for; a paused one fails at once ("resume it first"). Every input ends
    with exactly one result.

    Small results are returned (XCom) as a list in input order. Larger batches need ``output_path``
    (a local path, or an object store through an Airflow connection: ``s3://<conn_id>@bucket/key``):
    results are committed as they arrive, in pieces next to it (``<output_path>.parts/``, each one
    object written whole, so a hard-killed task keeps all but the open piece); when the batch succeeds
    they are joined into one JSON Lines file at ``output_path``, ``{"index": i, "output": ...}`` (or
    ``"error"``) a line, each index once, and the pieces removed. A retry sends only the inputs with no
    result yet, if the results belong to the same work: the same inputs, task, ``parameters`` and
    model revision (the *work key*); otherwise it starts afresh and says so. The return value is then
    ``{"output_path", "summary"}``, and an Airflow Asset event for ``output_path`` marks the results
    ready. A summary (count, errors, duration, requests, retries) is pushed under the XCom key
    ``summary``.

    A timeout (``execution_timeout``) or a kill stops the requests at once, commits what was
    answered and fails the task.

    OpenAI Batch files are read and written as they are (``input_format="openai-batch"``, or found by
    themselves): each line's ``url`` picks its route, its ``body`` is sent with the model name the
    endpoint's server takes, and the results are OpenAI batch output lines matched by ``custom_id``
    (resumed by it too). With ``output_schema`` every generated answer is checked against a JSON
    Schema: stored parsed when it matches, asked again (``invalid_output_retries``), then kept as an
    ``invalid_output`` error.

    :param endpoint_name: the endpoint. (templated)
    :param task: ``text-generation``, ``chat-completion``, ``completion``, ``embeddings``,
        ``feature-extraction``, ``text-classification``, ``summarization``, ``fill-mask``, or ``raw``
        (post each input as is). Not needed for OpenAI batch lines (each line's ``url`` says it);
        given, it must agree with every line.
    :param inputs: the jobs, a list (or an XComArg; works with ``.partial().expand(inputs=chunks)``). (templated)
    :param input_path: instead of ``inputs``: a JSON Lines file (path or URI), one job per line. (templated)
    :param input_format: ``auto`` (default): OpenAI batch lines when the first job is one (an object
        with ``custom_id`` and ``url``; then every job must be), else the provider's jobs; ``jobs``;
        or ``openai-batch``: ``{"custom_id", "method", "url", "body"}`` lines, ``url`` one of
        ``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``. Results are then OpenAI
        batch output lines (``{"id", "custom_id", "response", "error"}``).
    :param output_schema: a JSON Schema every generated answer must match (``text-generation``,
        ``chat-completion``, ``completion``, and those lines of an OpenAI batch file): asked for as
        the engine spells structured output where the jobs ask for no ``response_format`` of their
        own, checked, and stored parsed (OpenAI lines: ``message.parsed``). Default: not checked.
    :param invalid_output_retries: times a job whose answer does not match ``output_schema`` is sent
        again before it ends with an error of kind ``invalid_output``. Default 1.
    :param namespace: the endpoint's namespace. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param parameters: parameters sent with every job (e.g. ``{"max_new_tokens": 64}``; OpenAI's
        ``response_format`` asks for structured output, in each engine's own spelling); with OpenAI batch
        lines, defaults under each line's ``body``. (templated)
    :param max_concurrency: requests in flight at most. Default: 32 per replica the endpoint may
        scale to (its ``maxReplica``). Within it, the concurrency adapts to what the endpoint takes and
        follows the replicas autoscaling adds or removes.
    :param batch_size: inputs in one request for tasks whose route takes a list (``feature-extraction``,
        ``text-classification``, ``embeddings``). Default 32 (TEI's default ``max_client_batch_size``);
        a group refused as too large (413) or as bad is split and sent again, each input still ending
        with exactly one result. 1 sends one input per request.
    :param request_timeout: seconds one request may take. Default 60.
    :param max_retries: retries of one job after transient failures. Default 8. A 429 (overloaded)
        is not counted while other jobs succeed: it is backpressure, the job waits its turn.
    :param wake_scaled_to_zero: wake a scaled-to-zero endpoint and wait for it. Default True.
    :param cold_start_timeout: seconds a waking endpoint is waited for. Default 600.
    :param overload_timeout: seconds the batch may go with no job succeeding while the endpoint answers
        429; after that, 429s count as retries. Default 300.
    :param output_path: JSON Lines file (path or URI) for the results. (templated)
    :param commit_max_results: with ``output_path``: results in one committed piece at most. Default 500.
    :param commit_max_seconds: with ``output_path``: seconds before an open piece is committed.
        Default 10. A hard kill loses at most this much work (and the piece being written).
    :param on_item_error: ``fail`` (default): the task fails once every other job finished (and was
        saved), naming how many failed and the first errors; ``record``: failed jobs get ``None`` and
        their errors go to XCom key ``errors`` (and to ``output_path``).
    :param max_xcom_bytes: results (and the errors pushed beside them) larger than this need
        ``output_path``. Default 1 MiB.
    :param progress_interval: seconds between two progress log lines. Default 30.
    :param replace_output: replace a file at ``output_path`` that this provider did not write (no
        manifest of its own vouches for it). Default False: such a file is refused, left untouched,
        before any request.
    :param max_input_bytes: bytes of one ``input_path`` line at most; a longer line is refused with
        its number before any request. Default 4 MiB.
    :param window_budget: set by :func:`~airflow_provider_hfep.window.endpoint_window` when it has caps
        (``{"caps", "opened_by", "check_interval"}``): the batch stops sending the moment a cap fires,
        keeps what was answered and fails with :class:`~airflow_provider_hfep.endpoints.BudgetExceededError`.
    """

    template_fields: Sequence[str] = (
        *EndpointTarget.template_fields,
        "inputs",
        "input_path",
        "output_path",
        "parameters",
    )
    template_fields_renderers = {"inputs": "json", "parameters": "json"}

    def __init__(
        self,
        *,
        endpoint_name: str,
        task: str | None = None,
        inputs: list[Any] | None = None,
        input_path: str | ObjectStoragePath | None = None,
        input_format: str = "auto",
        output_schema: dict[str, Any] | None = None,
        invalid_output_retries: int = 1,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        parameters: dict[str, Any] | None = None,
        max_concurrency: int | None = None,
        batch_size: int = 32,
        request_timeout: float = 60.0,
        max_retries: int = 8,
        wake_scaled_to_zero: bool = True,
        cold_start_timeout: float = 600.0,
        overload_timeout: float = 300.0,
        output_path: str | ObjectStoragePath | None = None,
        commit_max_results: int = 500,
        commit_max_seconds: float = 10.0,
        on_item_error: str = "fail",
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        progress_interval: float = 30.0,
        replace_output: bool = False,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        window_budget: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("input_format", input_format, INPUT_FORMATS)
        if task is not None:
            get_task(task)
        elif input_format == "jobs":
            raise InvalidEndpointArgumentError(
                "task", "is needed for jobs in the provider's format", "name the task (e.g. chat-completion)"
            )
        if output_schema is not None:
            OutputSchema(output_schema)  # a schema that is not one is refused when the DAG is parsed
            if task is not None and task not in GENERATING_TASKS:
                raise InvalidEndpointArgumentError(
                    "output_schema",
                    f"checks generated text, and {task} generates none",
                    f"use it with {', '.join(GENERATING_TASKS)}, or leave it out",
                )
        check_count("invalid_output_retries", invalid_output_retries, 0)
        if (inputs is None) == (input_path is None):
            raise InvalidEndpointArgumentError(
                "inputs",
                "give exactly one of inputs and input_path",
                "pass a list of jobs, or a JSON Lines file",
            )
        check_choice("on_item_error", on_item_error, ON_ITEM_ERROR)
        if max_concurrency is not None:
            check_count("max_concurrency", max_concurrency, 1)
        check_count("batch_size", batch_size, 1)
        check_count("max_retries", max_retries, 0)
        check_count("max_xcom_bytes", max_xcom_bytes, 1)
        check_count("commit_max_results", commit_max_results, 1)
        check_count("max_input_bytes", max_input_bytes, 1)
        for field, value in (
            ("request_timeout", request_timeout),
            ("cold_start_timeout", cold_start_timeout),
            ("overload_timeout", overload_timeout),
            ("progress_interval", progress_interval),
            ("commit_max_seconds", commit_max_seconds),
        ):
            check_seconds(field, value)
        self._set_target(endpoint_name, namespace, hf_conn_id)
        self.task = task
        self.inputs = inputs
        self.input_path = input_path
        self.input_format = input_format
        self.output_schema = output_schema
        self.parameters = parameters
        self.settings = BatchSettings(
            max_concurrency=max_concurrency or CONCURRENCY_PER_REPLICA,
            batch_size=batch_size,
            request_timeout=request_timeout,
            max_retries=max_retries,
            wake_scaled_to_zero=wake_scaled_to_zero,
            cold_start_timeout=cold_start_timeout,
            overload_timeout=overload_timeout,
            progress_interval=progress_interval,
            invalid_output_retries=invalid_output_retries,
        )
        self.max_concurrency = max_concurrency
        self.output_path = output_path
        self.commit = CommitSettings(max_results=commit_max_results, max_seconds=commit_max_seconds)
        self.on_item_error = on_item_error
        self.max_xcom_bytes = max_xcom_bytes
        self.replace_output = replace_output
        self.max_input_bytes = max_input_bytes
        self._running: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any] | None] | None = None
        self._stopped_by: int | CapFired | None = None
        self.window_budget = window_budget
        self._budget: tuple[Budget, float, float] | None = None
        self._ran_on: dict[str, Any] | None = None  # the endpoint and model, for lineage

    # -- inputs ------------------------------------------------------------------------------------

    def _read_lines(self, source: str | ObjectStoragePath) -> Iterator[tuple[int, Any]]:
        """Stream ``(index, job)`` from ``input_path``, each line checked (:func:`jobs_of_lines`)."""
        from airflow.sdk import ObjectStoragePath

        try:
            lines = ObjectStoragePath(source).open("rb")
        except FileNotFoundError:
            raise InvalidEndpointArgumentError(
                "input_path",
                f"{source} does not exist",
                "check the path (it is rendered, then read by the worker)",
            ) from None
        with lines:
            yield from jobs_of_lines(lines, self.max_input_bytes)

    def _jobs(self) -> Callable[[], Iterator[tuple[int, Any]]]:
        """Return a way to iterate ``(index, job)`` over the inputs, from the start, as often as needed."""
        if self.input_path is None:
            jobs = jobs_of_list(self.inputs)
            return lambda: enumerate(jobs)
        source = self.input_path
        return lambda: self._read_lines(source)

    # -- the endpoint ------------------------------------------------------------------------------

    def _running_endpoint(self, name: str, namespace: str) -> InferenceEndpoint:
        """Read the endpoint: it must serve (or be waking), with a URL the token may be sent to."""
        endpoint = self.hook.client.get(name, namespace=namespace)
        state = endpoint.status
        # The waits' own judgement: failed, updateFailed and paused end here with their typed error;
        # scaled to zero too, unless the batch may wake it.
        progress = assess(endpoint, EndpointStatus.RUNNING)
        waking = progress.outcome is Outcome.SCALED_TO_ZERO and self.settings.wake_scaled_to_zero
        if progress.outcome not in (Outcome.WAITING, Outcome.SUCCESS) and not waking:
            raise_for_result(WatchResult.of(endpoint, progress))
        if endpoint.url is None:
            raise EndpointsError(
                f"Endpoint {name} has no URL yet ({state}): wait for it (HuggingFaceEndpointSensor) first"
            )
        if not token_may_travel(endpoint.url, self.hook.client.allow_insecure_http):
            raise EndpointsError(
                f"Endpoint {name} has a plain http URL on another machine ({endpoint.url}): the token is "
                "not sent there. Fix: an https endpoint, or allow_insecure_http in the connection"
            )
        if state != EndpointStatus.RUNNING:
            self.log.info(
                "Endpoint %s is %s: requests will wait for it (up to %s s)",
                name,
                state,
                self.settings.cold_start_timeout,
            )
        return endpoint

    # -- results -----------------------------------------------------------------------------------

    def _check_paths(self) -> None:
        """Refuse an ``output_path`` that names the input (however spelled): writing it would destroy it."""
        if self.input_path is None or self.output_path is None:
            return
        from airflow.sdk import ObjectStoragePath

        source, output = (
            store_identity(ObjectStoragePath(self.input_path)),
            store_identity(ObjectStoragePath(self.output_path)),
        )
        if source == output or source[1].startswith(f"{output[1]}.parts/"):
            raise InvalidEndpointArgumentError(
                "output_path",
                f"{self.output_path} is the input file {self.input_path} (or beside it, in the results' "
                "own folder): the results would destroy the inputs",
                "write the results to another path",
            )

    def _request_lines(self, jobs: Callable[[], Iterator[tuple[int, Any]]]) -> RequestLines | None:
        """Tell OpenAI batch lines (what to check them with) from the provider's jobs (``None``)."""
        if self.input_format == "jobs" or (
            self.input_format == "auto" and not openai_batch.is_request_line(first_job(jobs))
        ):
            if self.task is None:
                raise InvalidEndpointArgumentError(
                    "task",
                    "is needed: the jobs are not OpenAI batch lines (objects with custom_id and url)",
                    "name the task, or write OpenAI batch lines",
                )
            return None
        return RequestLines("inputs" if self.input_path is None else "input_path", self.task)

    def _check_jobs(
        self, jobs: Callable[[], Iterator[tuple[int, Any]]], lines: RequestLines | None
    ) -> tuple[InputsDigest, str | None]:
        """Check every job before any request; return their digest, and where structured output is asked."""
        if lines is not None:
            return checked_jobs(jobs, lines.check), None
        task = get_task(self.task)
        asked: list[str] = []
        if isinstance(self.parameters, dict) and "response_format" in self.parameters:
            check_response_format("parameters.response_format", self.parameters["response_format"])
            if asks_structure(self.parameters):
                asked.append("parameters.response_format")

        def check(index: int, job: Any) -> None:
            task.check(index, job, task.name)
            if not asked and isinstance(job, dict) and "response_format" in job:
                check_response_format(f"inputs[{index}].response_format", job["response_format"])
                if asks_structure(job):
                    asked.append(f"inputs[{index}].response_format")

        return checked_jobs(jobs, check), (asked[0] if asked else None)

    def execute(self, context: Context) -> Any:
        self._check_paths()
        jobs = self._jobs()
        lines = self._request_lines(jobs)
        inputs, asked_by = self._check_jobs(jobs, lines)  # every job checked before any request
        total = inputs.count
        name, namespace = self._resolve(context)
        self._target = (name, namespace)
        if self.window_budget is not None:
            self._budget = self._resolve_budget(context)
        endpoint = self._running_endpoint(name, namespace)
        # The route follows the endpoint's engine; a task (or a line's url) it does not serve is refused here.
        where = f"endpoint {name}"
        schema = OutputSchema(self.output_schema) if self.output_schema is not None else None
        if lines is not None:
            names = openai_batch.check_routes(lines, endpoint, where)
            route = self._route(endpoint, where, names)
            task = request_task(
                route.tasks,
                listed_models=route.listed_models,
                spellings=route.engine.structured_output,
                output_schema=schema,
            )
        else:
            route = self._route(endpoint, where, [str(self.task)])
            task = structured_task(route.task, route.engine, asked_by=asked_by, output_schema=schema)
        self._ran_on = {
            "endpoint": name,
            "namespace": namespace,
            "repository": endpoint.repository,
            "revision": endpoint.revision,
            "engine": endpoint.image_kind,
            "task": self.task or openai_batch.FORMAT,
        }
        least, most = endpoint.min_replica, endpoint.max_replica
        self.settings = route.settings_for(
            dataclasses.replace(
                self.settings, max_concurrency=self.max_concurrency or CONCURRENCY_PER_REPLICA * max(1, most)
            ),
            endpoint.ready_replicas or 1,
        )
        self._autoscales = most > max(1, least)
        self.log.info(
            "Task %s on %s: %s%s, at most %d requests in flight (%s: %s)",
            self.task or openai_batch.FORMAT,
            route.engine.name,
            route.url,
            ", ".join(sorted({served.path for served in route.tasks.values()})),
            self.settings.max_concurrency,
            "starting at the stated capacity" if self.settings.known_capacity else "found by probing",
            route.limits.describe(),
        )
        # OpenAI batch lines: their results are OpenAI batch output lines, matched by custom_id
        as_lines = ResultLines(lines.indices) if lines is not None else None
        if self.output_path is not None:
            key = route.describe_work(
                endpoint, inputs_sha256=inputs.hexdigest(), inputs=total, parameters=self.parameters
            )
            if lines is not None:  # the results' format too: another format is other work
                routes = sorted({served.path for served in route.tasks.values()})
                key.update(format=openai_batch.FORMAT, route=routes, task=self.task)
            if schema is not None:
                key["output_schema"] = self.output_schema
            return self._run_to_file(context, self.output_path, key, task, route.url, jobs, as_lines)
        return self._run_to_xcom(context, task, route.url, total, jobs, as_lines)

    def _route(self, endpoint: InferenceEndpoint, where: str, tasks: Sequence[str]) -> BatchRoute:
        """Decide the batch's route, asking the endpoint's server what it must (with the endpoint's token)."""
        timeout = self.settings.request_timeout
        client = self.hook.client
        with httpx.Client(auth=client.auth, verify=tls_verification(client.verify), timeout=timeout) as http:
            return route_batch(endpoint, tasks[0], http, timeout=timeout, where=where, also=tasks[1:])

    def _resolve_budget(self, context: Context) -> tuple[Budget, float, float] | None:
        """Make the window's caps for this night, counted from when its resume opened it."""
        window = self.window_budget or {}
        opened = context["ti"].xcom_pull(task_ids=window["opened_by"])
        if not opened:
            self.log.warning(
                "The window's resume left no result: its caps are watched by its budget task only"
            )
            return None
        since = opened_at(opened)
        budget = WindowCaps(**window["caps"]).resolve(since)
        return budget, since, float(window.get("check_interval", 5.0))

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Report the input and output files, the endpoint and the model (the OpenLineage provider calls it)."""
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_hfep.lineage import batch_lineage

        return batch_lineage(
            self._ran_on,
            ObjectStoragePath(self.input_path) if self.input_path is not None else None,
            ObjectStoragePath(self.output_path) if self.output_path is not None else None,
        )

    def _ready_replicas(self) -> int | None:
        name, namespace = self._target
        return self.hook.client.get(name, namespace=namespace).ready_replicas or None

    def _run(
        self,
        task: InferenceTask,
        url: str,
        items,
        total: int,
        on_result,
        beside: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    ) -> Any:
        """
        Run the batch in an event loop; ``beside`` run alongside it (and are cancelled after).

        Airflow's ``execution_timeout`` raises from a SIGALRM handler wherever the main thread is: in
        the event loop that can be a callback, whose errors asyncio only logs, and the batch would run
        on. So while the batch runs, the alarm (and :meth:`on_kill`, Airflow's answer to SIGTERM) only
        cancels it; once every request is stopped and the results are handed over, Airflow's own
        handler raises its timeout.
        """
        # An endpoint that autoscales: the batch reads its replicas now and then (in a thread: the
        # management client is a blocking one) and its concurrency follows them.
        replicas = (lambda: asyncio.to_thread(self._ready_replicas)) if self._autoscales else None
        answered = 0

        def counted(result: ItemResult) -> None:
            nonlocal answered
            answered += 1
            on_result(result)

        async def main():
            self._running = (asyncio.get_running_loop(), asyncio.current_task())
            if self._stopped_by is not None:  # stopped before the loop ran: not one request
                raise asyncio.CancelledError
            alongside = [asyncio.ensure_future(coroutine()) for coroutine in beside]
            if self._budget is not None:
                alongside.append(asyncio.ensure_future(self._watch_budget(*self._budget)))
            try:
                async with batch_client(
                    self.hook.client.auth, self.settings.max_concurrency, self.hook.client.verify
                ) as client:
                    return await run_batch(
                        client=client,
                        url=url,
                        task=task,
                        items=items,
                        parameters=self.parameters,
                        on_result=counted,
                        settings=self.settings,
                        total=total,
                        replicas=replicas,
                    )
            finally:
                self._running = None  # before the loop closes: a late signal finds nothing to cancel
                for task_beside in alongside:
                    task_beside.cancel()

        in_main_thread = threading.current_thread() is threading.main_thread()
        alarm = signal.getsignal(signal.SIGALRM) if in_main_thread else None
        if callable(alarm):
            signal.signal(signal.SIGALRM, lambda signum, frame: self._stop(signum))
        try:
            summary = asyncio.run(main())
        except asyncio.CancelledError:
            if self._stopped_by is None:
                raise
        finally:
            if callable(alarm):
                signal.signal(signal.SIGALRM, alarm)
        if self._stopped_by == signal.SIGALRM and callable(alarm):
            alarm(signal.SIGALRM, None)  # Airflow's timeout error, now that the batch has stopped
        if isinstance(self._stopped_by, CapFired):
            fired = self._stopped_by
            raise BudgetExceededError(
                f"{fired.describe()}: the batch stopped sending and the window closes the endpoint; "
                f"{total - answered} of {total} inputs were not sent (the {answered} answered are kept)",
                fired.to_json(),
            )
        if self._stopped_by is not None:
            raise EndpointsError(
                f"The batch was stopped ({signal.Signals(self._stopped_by).name}): "
                "the results answered until then are kept"
            )
        return summary

    async def _watch_budget(self, budget: Budget, since: float, check_every: float) -> None:
        """
        Stop the batch the moment a window's cap fires: the endpoint's close follows a moment later.

        Reads what the budget trigger reads (the endpoint, its replicas, its price) and decides with
        the same functions, so the work stops sending before the trigger closes the endpoint.
        """
        name, namespace = self._target
        price: list[float | None] = []
        while True:
            endpoint, replicas = await asyncio.to_thread(self._read_bill, name, namespace, price, budget)
            now = self.hook.client.api_time
            fired = next_cap(budget, since, now, spend_of(endpoint, replicas, price[0], since, now))
            if fired is not None and fired.at <= now:
                self.log.warning("Window cap reached: %s. Stopping the batch", fired.describe())
                self._stop(fired)
                return
            await asyncio.sleep(max(0.05, min(check_every, (fired.at - now) if fired else check_every)))

    def _read_bill(
        self, name: str, namespace: str, price: list[float | None], budget: Budget
    ) -> tuple[InferenceEndpoint, list[Replica]]:
        """Read the endpoint and its replicas (and, once, its price when a cost cap needs it)."""
        endpoint = self.hook.client.get(name, namespace=namespace)
        if not price:
            offers = self.hook.client.list_hardware(namespace) if budget.max_cost is not None else []
            price.append(price_per_hour(offers, endpoint.to_dict()))
        return endpoint, self.hook.client.replicas(name, namespace=namespace)

    def _stop(self, reason: int | CapFired) -> None:
        """Cancel the running batch (from a signal handler, or a cap: it only schedules the cancellation)."""
        self._stopped_by = reason
        if self._running is not None:
            loop, batch = self._running
            if batch is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the batch is over
                    loop.call_soon_threadsafe(batch.cancel)

    def on_kill(self) -> None:
        self._stop(signal.SIGTERM)

    def _endpoint_failing(self, summary) -> str:
        """
        Explain an endpoint that broke: the batch ended with server errors (5xx) only, at least 5 in a row.

        Its log and replicas go to the task log; the likely cause is returned for the error message.
        """
        if not summary.ending_server_errors or summary.ending_server_errors < min(summary.failed, 5):
            return ""
        name, namespace = self._target
        try:
            diagnosis = self.hook.client.diagnose(name, namespace=namespace)
        except Exception as exc:  # best effort: never in the way of the batch's own error
            self.log.warning("Could not read the endpoint's log and replicas: %s", exc)
            return ""
        for line in diagnosis.report():
            self.log.error("%s", line)
        return f" Likely cause: {diagnosis.cause}"

    def _finish(self, context: Context, summary, errors: list[dict[str, Any]]) -> None:
        context["ti"].xcom_push(key="summary", value=summary.to_dict())
        self.log.info("Batch done: %s", summary.to_dict())
        cause = self._endpoint_failing(summary) if summary.failed else ""
        if summary.failed and self.on_item_error == "fail":
            raise EndpointsError(
                f"{summary.failed} of {summary.total} inputs failed (the {summary.succeeded} others are saved); "
                f"first errors: {summary.first_errors}.{cause}"
            )
        if cause:
            self.log.warning("%d inputs failed, the last ones with server errors.%s", summary.failed, cause)
        if errors:
            context["ti"].xcom_push(key="errors", value=errors)

    def _run_to_xcom(
        self,
        context: Context,
        task: InferenceTask,
        url: str,
        total: int,
        jobs,
        as_lines: ResultLines | None = None,
    ) -> list[Any]:
        results: list[Any] = [None] * total
        errors: list[dict[str, Any]] = []
        size = 0

        def keep(result: ItemResult) -> None:
            nonlocal size
            if as_lines is not None:  # OpenAI batch lines: every result is a line, answer or error
                results[result.index] = as_lines.line(result)
                size += len(json.dumps(results[result.index]))
                if not result.ok:
                    errors.append(result.to_json())
            elif result.ok:
                results[result.index] = result.output
                size += len(json.dumps(result.output))
            else:
                errors.append(result.to_json())  # pushed to XCom too: it counts
                size += len(json.dumps(errors[-1]))
            if size > self.max_xcom_bytes:
                raise _XComTooLargeError(
                    f"results exceed max_xcom_bytes={self.max_xcom_bytes} after {sum(r is not None for r in results)} of {total} "
                    "inputs. Fix: set output_path (JSON Lines, resumable) or split the batch (.expand over chunks)"
                )

        summary = self._run(task, url, jobs(), total, keep)
        errors.sort(key=lambda error: error["index"])
        self._finish(context, summary, errors)
        return results

    def _run_to_file(
        self,
        context: Context,
        output: str | ObjectStoragePath,
        key: dict[str, Any],
        task: InferenceTask,
        url: str,
        jobs: Callable[[], Iterator[tuple[int, Any]]],
        as_lines: ResultLines | None = None,
    ) -> dict[str, Any]:
        from airflow.sdk import ObjectStoragePath

        path = ObjectStoragePath(output)
        ti = context["ti"]
        records: RecordFormat = as_lines if as_lines is not None else INDEXED  # read back to resume
        store = ResultStore(
            path,
            key,
            ti.try_number,
            self.commit,
            holder=f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{ti.map_index}",
            replace_output=self.replace_output,
            records=records,
        )
        done = store.resume()  # claims the output (makes the folders it needs)
        errors: list[dict[str, Any]] = []

        def keep(result: ItemResult) -> None:
            store.add(as_lines.line(result) if as_lines is not None else result.to_json())
            if not result.ok and len(errors) < 100:
                errors.append(result.to_json())

        missing = ((index, job) for index, job in jobs() if index not in done)
        reused = done.count
        try:
            try:
                summary = self._run(task, url, missing, key["inputs"] - reused, keep, [store.keep_committing])
            finally:
                store.close()  # after a success, a failure or a stop: the open piece is committed
            summary_dict = summary.to_dict()
            summary_dict["reused"] = reused
            self._finish(context, summary, errors)
            emit_results_asset(context, self.outlets, path, results=store.finish(), failed=summary.failed)
        finally:
            store.release()
        return {"output_path": str(path), "summary": summary_dict}
