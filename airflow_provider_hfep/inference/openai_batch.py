"""
The OpenAI Batch file format, in and out: one request a line, one result a line, matched by ``custom_id``.

An input line is ``{"custom_id", "method": "POST", "url", "body"}``; its ``url`` picks the route
(:data:`ROUTES`), and its ``body`` is sent as that route takes it, with the ``model`` the endpoint's
server answers to. A result line is ``{"id", "custom_id", "response": {"status_code", "request_id",
"body"}, "error": null}``, or ``"response": null`` and ``"error": {"code", "message"}`` for a request
that failed, in one file, as vLLM's ``run-batch`` writes it: code that reads OpenAI batch results
reads these unchanged. Every line is checked before any request (:class:`RequestLines`): a route
this operator does not send, a duplicate ``custom_id`` (naming both lines), a body the route cannot
take. No Airflow, no I/O.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.inference import engines
from airflow_provider_hfep.inference.shapes import InferenceTask, ModelBody
from airflow_provider_hfep.inference.structured import asks_structure, check_response_format
from airflow_provider_hfep.inference.tasks import task_for_engine

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_hfep.endpoints.models import InferenceEndpoint
    from airflow_provider_hfep.inference.batch import ItemResult
    from airflow_provider_hfep.inference.structured import OutputSchema, Spelling

#: the input format's name, as ``input_format`` takes it
FORMAT = "openai-batch"
#: the routes a line may name -> the task that sends it
ROUTES = {
    "/v1/chat/completions": "chat-completion",
    "/v1/completions": "completion",
    "/v1/embeddings": "embeddings",
}
#: the tasks a caller may name beside an OpenAI batch file -> the one route every line must then have
AGREEING_TASKS = {
    "chat-completion": "/v1/chat/completions",
    "completion": "/v1/completions",
    "text-generation": "/v1/completions",
    "embeddings": "/v1/embeddings",
    "feature-extraction": "/v1/embeddings",
}
#: what each route's body must carry (the key, and what it holds)
_CONTENT = {
    "/v1/chat/completions": ("messages", "a non-empty list of {role, content} messages"),
    "/v1/completions": ("prompt", "a string or a list of strings"),
    "/v1/embeddings": ("input", "a string or a list of strings"),
}
_HTTP_STATUS = re.compile(r"^HTTP (\d{3})\b")


def is_request_line(job: Any) -> bool:
    """Tell whether a job is an OpenAI batch request line (an object with ``custom_id`` and ``url``)."""
    return isinstance(job, dict) and "custom_id" in job and "url" in job


def _content_ok(url: str, body: dict[str, Any]) -> bool:
    key = _CONTENT[url][0]
    value = body.get(key)
    if url == "/v1/chat/completions":
        return (
            isinstance(value, list)
            and bool(value)
            and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
        )
    return (isinstance(value, str) and bool(value)) or (isinstance(value, list) and bool(value))


class RequestLines:
    """
    The checks of an OpenAI batch file's lines, one line at a time, before any request.

    Keeps what the routing needs afterwards: each ``custom_id``'s index (the results are matched and
    resumed by it), the routes used, and the first line of each route asking for structured output.

    :param field: the argument the lines came from (``input_path`` or ``inputs``), named in refusals.
    :param task: the task the caller named, if any: every line must then have its route.
    """

    def __init__(self, field: str, task: str | None = None) -> None:
        self.field = field
        self.task = task
        self.indices: dict[str, int] = {}
        #: route -> (index, custom_id) of its first line
        self.routes: dict[str, tuple[int, str]] = {}
        #: route -> (index, custom_id) of its first line asking for structured output
        self.structured: dict[str, tuple[int, str]] = {}

    def _refuse(self, index: int, custom_id: Any, problem: str, fix: str) -> InvalidEndpointArgumentError:
        named = f" (custom_id {custom_id!r})" if isinstance(custom_id, str) else ""
        return InvalidEndpointArgumentError(self.field, f"request {index + 1}{named} {problem}", fix)

    def check(self, index: int, job: Any) -> None:
        """Refuse a line that cannot be sent, naming it; remember its ``custom_id`` and route."""
        if not is_request_line(job):
            raise self._refuse(
                index,
                None,
                "is not an OpenAI batch request (an object with custom_id, method, url and body)",
                "write every line as one, or pass input_format='jobs' for the provider's own format",
            )
        custom_id, url, body = job["custom_id"], job["url"], job.get("body")
        if not isinstance(custom_id, str) or not custom_id:
            raise self._refuse(
                index, None, f"has custom_id {custom_id!r}", "give each line a non-empty string"
            )
        if custom_id in self.indices:
            raise self._refuse(
                index,
                custom_id,
                f"repeats the custom_id of request {self.indices[custom_id] + 1}",
                "give each line its own custom_id (results are matched by it)",
            )
        if job.get("method", "POST") != "POST":
            raise self._refuse(index, custom_id, f"has method {job.get('method')!r}", 'use "POST"')
        if url not in ROUTES:
            raise self._refuse(
                index,
                custom_id,
                f"asks for {url!r}, a route this operator does not send",
                f"use one of {', '.join(ROUTES)}",
            )
        if self.task is not None and AGREEING_TASKS.get(self.task) != url:
            raise InvalidEndpointArgumentError(
                "task",
                f"{self.task!r} does not agree with request {index + 1} (custom_id {custom_id!r}), which asks "
                f"for {url}",
                "leave task out (each line's url picks its route), or split the file by route",
            )
        if not isinstance(body, dict):
            raise self._refuse(index, custom_id, "has no body object", "put the request body under 'body'")
        if not _content_ok(url, body):
            key, what = _CONTENT[url]
            raise self._refuse(index, custom_id, f"has no {key} in its body", f"give {key}: {what}")
        if body.get("stream") is True:
            raise self._refuse(
                index, custom_id, "asks to stream", "leave stream out: a batch keeps whole answers"
            )
        if "response_format" in body:
            check_response_format(
                f"{self.field}: request {index + 1} body.response_format", body["response_format"]
            )
            if asks_structure(body):
                self.structured.setdefault(url, (index, custom_id))
        self.indices[custom_id] = index
        self.routes.setdefault(url, (index, custom_id))

    def describe(self, url: str, structured: bool = False) -> str:
        """Name the first line of a route (or the first asking it for structured output), for refusals."""
        index, custom_id = (self.structured if structured else self.routes)[url]
        return f"request {index + 1} (custom_id {custom_id!r})"


def request_task(
    served: Mapping[str, InferenceTask],
    *,
    listed_models: tuple[str, ...] = (),
    spellings: Mapping[str, Spelling] | None = None,
    output_schema: OutputSchema | None = None,
) -> InferenceTask:
    """
    Make the task that sends OpenAI batch lines, each on the route its ``url`` names.

    :param served: the tasks as the endpoint's engine serves them, by name (their routes, and the
        model name their bodies send).
    :param listed_models: the model names the server lists (``/v1/models``): a line naming one keeps
        it; any other ``model`` is replaced by what the endpoint serves.
    :param spellings: the engine's structured output spellings, by task name.
    :param output_schema: the schema generation answers must match: asked for where a line asks for no
        format of its own (on routes that can constrain output), and checked on every answer.
    """
    routes = {url: served[name] for url, name in ROUTES.items() if name in served}
    spellings = spellings or {}

    def task_of(line: dict[str, Any]) -> InferenceTask:
        return routes[line["url"]]

    def body(line: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
        task = task_of(line)
        sent = {**parameters, **line["body"]}
        if sent.get("model") not in listed_models and isinstance(task.body, ModelBody):
            sent["model"] = task.body.model
        if line["url"] != "/v1/embeddings":
            sent["stream"] = False
            spelling = spellings.get(task.name)
            if output_schema is not None and spelling is not None and "response_format" not in sent:
                sent["response_format"] = output_schema.response_format()
            if spelling is not None:
                sent = spelling(sent)
        return sent

    def validate(line: dict[str, Any], answer: Any) -> Any:
        if output_schema is None or line["url"] == "/v1/embeddings":
            return answer
        choices = [dict(choice) for choice in answer["choices"]]
        for choice in choices:
            if "message" in choice:
                message = dict(choice["message"])
                message["parsed"] = output_schema.parse(message.get("content"))
                choice["message"] = message
            else:
                choice["parsed"] = output_schema.parse(choice.get("text"))
        return {**answer, "choices": choices}

    return InferenceTask(
        FORMAT,
        "/",
        lambda index, line, name: None,  # checked by RequestLines before the task exists
        body,
        lambda answer: answer,
        route=lambda line: task_of(line).path,
        validate=validate if output_schema is not None else None,
    )


def error_code(result: ItemResult) -> str:
    """Name a failed request's error in the output file: its kind (``invalid_output``), HTTP status or cause."""
    if result.kind:
        return result.kind
    message = str(result.error)
    status = _HTTP_STATUS.match(message)
    if status:
        return f"http_{status.group(1)}"
    for cause in ("timeout", "connection error", "unexpected answer"):
        if message.startswith(cause):
            return cause.replace(" ", "_")
    return "request_failed"


def result_line(custom_id: str, result: ItemResult) -> dict[str, Any]:
    """Write one result as an OpenAI batch output line."""
    unique = uuid.uuid4().hex
    line: dict[str, Any] = {"id": f"batch_req_{unique}", "custom_id": custom_id}
    if result.ok:
        request_id = result.request_id or f"req_{unique}"  # the server's, where it names its requests
        line["response"] = {"status_code": 200, "request_id": request_id, "body": result.output}
        line["error"] = None
    else:
        line["response"] = None
        line["error"] = {"code": error_code(result), "message": str(result.error)}
    return line


class ResultLines:
    """
    The results of a file's lines as OpenAI batch output lines: written, and read back by ``custom_id``.

    The result store reads its records through it (:class:`~airflow_provider_hfep.inference.results.RecordFormat`).

    :param indices: each ``custom_id``'s index among the lines (from :class:`RequestLines`).
    """

    def __init__(self, indices: Mapping[str, int]) -> None:
        self.indices = indices
        self._custom_ids = [""] * len(indices)
        for custom_id, index in indices.items():
            self._custom_ids[index] = custom_id

    def line(self, result: ItemResult) -> dict[str, Any]:
        """Write the result of one line as its output line."""
        return result_line(self._custom_ids[result.index], result)

    def index(self, record: dict[str, Any]) -> int | None:
        """Return the index of a result line's request (``None``: not one of this file's)."""
        custom_id = record.get("custom_id")
        return self.indices.get(custom_id) if isinstance(custom_id, str) else None

    def answered(self, record: dict[str, Any]) -> bool:
        """Tell whether a result line holds an answer (not an error)."""
        return record.get("error") is None and record.get("response") is not None


def check_routes(lines: RequestLines, endpoint: InferenceEndpoint, where: str) -> list[str]:
    """
    Refuse, naming its first line, a route the endpoint's engine (or its model) cannot serve; return the tasks.

    A mixed file (chat and embeddings lines) runs where the engine serves both, and is refused otherwise.
    Lines asking for structured output are refused where the engine's route cannot constrain answers.
    """
    engine = engines.engine_for(endpoint.image_kind)
    names = []
    for url in lines.routes:
        try:
            task_for_engine(ROUTES[url], endpoint.image_kind, endpoint.repository, where, endpoint.task)
        except InvalidEndpointArgumentError as exc:
            raise InvalidEndpointArgumentError(
                lines.field,
                f"{lines.describe(url)} asks for {url}: {exc.problem}",
                f"send the {url} lines to an endpoint that serves them (split the file by url)",
            ) from None
        names.append(ROUTES[url])
    for url in lines.structured:
        if ROUTES[url] not in engine.structured_output:
            raise InvalidEndpointArgumentError(
                lines.field,
                f"{lines.describe(url, structured=True)} asks for a response_format on {url}, and {engine.name} "
                f"({endpoint.image_kind}) at {where} cannot constrain those answers to JSON",
                "leave response_format out of those lines (output_schema still checks the answers), or use "
                "an engine that can (TGI's chat route, vLLM, SGLang)",
            )
    if not names:  # no line at all: the first OpenAI route the engine serves
        served = engine.serving(endpoint.repository)
        names = [name for name in ROUTES.values() if name in served][:1] or ["chat-completion"]
    return names
