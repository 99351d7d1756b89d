"""
Structured output: OpenAI's ``response_format`` in each engine's spelling, and answers checked against a schema.

A request asks for JSON with OpenAI's ``response_format`` (``{"type": "json_object"}``, or
``{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}``). The engines that can
constrain their output take it in their own words: vLLM and SGLang as OpenAI does, TGI as a grammar
(``{"type": "json_object", "value": <schema>}`` on its chat route, ``parameters.grammar`` on its own
route). Each engine declares, route by route, the :data:`Spelling` it takes
(:attr:`~airflow_provider_hfep.inference.engines.Engine.structured_output`); a route with none refuses
a ``response_format`` before any request. :class:`OutputSchema` checks each answer against the JSON
Schema the caller gave (``jsonschema``, which Airflow itself depends on). No Airflow, no I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

if TYPE_CHECKING:
    from airflow_provider_hfep.inference.engines import Engine
    from airflow_provider_hfep.inference.shapes import InferenceTask

#: rewrites a request body whose ``response_format`` (at the top level, or in TGI's ``parameters``)
#: asks for structured output into the spelling the engine's route takes
Spelling = Callable[[dict[str, Any]], dict[str, Any]]

#: the schema of ``{"type": "json_object"}``: any JSON object
ANY_OBJECT: dict[str, Any] = {"type": "object"}
#: what the operator calls the schema it sends on its own (``output_schema`` with no ``response_format``)
SCHEMA_NAME = "output"


class InvalidOutputError(ValueError):
    """An answer is not JSON of the schema asked for (its message says where and why)."""


def check_response_format(field: str, value: Any) -> None:
    """Refuse a ``response_format`` that is not OpenAI's ``text``, ``json_object`` or ``json_schema``."""
    fix = (
        'use {"type": "json_object"} or {"type": "json_schema", "json_schema": {"name": "...", '
        '"schema": {...}}}'
    )
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise InvalidEndpointArgumentError(field, f"{value!r} is not an OpenAI response_format", fix)
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
            raise InvalidEndpointArgumentError(field, "json_schema needs an object with a 'schema'", fix)
        check_schema(f"{field}.json_schema.schema", spec.get("schema", ANY_OBJECT))


def schema_of(response_format: dict[str, Any]) -> dict[str, Any] | None:
    """Return the JSON Schema a ``response_format`` asks for (any object for ``json_object``; ``None``: text)."""
    kind = response_format.get("type")
    if kind == "json_schema":
        return response_format["json_schema"].get("schema", ANY_OBJECT)
    return ANY_OBJECT if kind == "json_object" else None


def asked_format(body: Any) -> Any:
    """Find a body's ``response_format``: at the top level (OpenAI routes) or in ``parameters`` (``POST /``)."""
    if not isinstance(body, dict):
        return None
    if "response_format" in body:
        return body["response_format"]
    parameters = body.get("parameters")
    return parameters.get("response_format") if isinstance(parameters, dict) else None


def asks_structure(body: Any) -> bool:
    """Tell whether a body asks for structured output (a ``response_format`` other than ``text``)."""
    asked = asked_format(body)
    return isinstance(asked, dict) and asked.get("type") != "text"


def as_openai(body: dict[str, Any]) -> dict[str, Any]:
    """Keep OpenAI's spelling (vLLM, SGLang, llama.cpp and the user's own server take it as it is)."""
    return body


def as_tgi_chat(body: dict[str, Any]) -> dict[str, Any]:
    """TGI's chat route: ``response_format`` as a grammar, ``{"type": "json_object", "value": <schema>}``."""
    asked = asked_format(body)
    if not isinstance(asked, dict) or asked.get("type") == "text":
        return _without_text_format(body)
    return {**body, "response_format": {"type": "json_object", "value": schema_of(asked)}}


def as_tgi_grammar(body: dict[str, Any]) -> dict[str, Any]:
    """TGI's own route (``POST /``): ``parameters.grammar = {"type": "json", "value": <schema>}``."""
    asked = asked_format(body)
    if not isinstance(asked, dict):
        return body
    parameters = dict(body.get("parameters") or {})
    parameters.pop("response_format", None)
    body = {key: value for key, value in body.items() if key != "response_format"}
    if asked.get("type") != "text":
        parameters["grammar"] = {"type": "json", "value": schema_of(asked)}
    return {**body, "parameters": parameters}


def _without_text_format(body: dict[str, Any]) -> dict[str, Any]:
    """Drop a ``{"type": "text"}`` format, which asks for nothing (TGI refuses the spelling)."""
    if "response_format" not in body:
        return body
    return {key: value for key, value in body.items() if key != "response_format"}


def check_schema(field: str, schema: Any) -> None:
    """Refuse a value that is not a valid JSON Schema, naming the field."""
    if not isinstance(schema, dict):
        raise InvalidEndpointArgumentError(
            field,
            f"expected a JSON Schema object, got {type(schema).__name__}",
            'pass e.g. {"type": "object"}',
        )
    import jsonschema  # here: the client without Airflow pays for it only when a schema is given

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise InvalidEndpointArgumentError(
            field, f"is not a valid JSON Schema ({exc.message})", "fix the schema"
        ) from None


class OutputSchema:
    """
    The JSON Schema each answer must match: checks an answer's text and returns it parsed.

    :param schema: a JSON Schema (any draft ``jsonschema`` knows; 2020-12 when it names none).
    :param field: the argument it came from, named when it is refused.
    """

    def __init__(self, schema: dict[str, Any], field: str = "output_schema") -> None:
        import jsonschema

        check_schema(field, schema)
        self.schema = schema
        self._validator = jsonschema.validators.validator_for(schema)(schema)
        self._best_match = jsonschema.exceptions.best_match

    def parse(self, text: Any) -> Any:
        """Return ``text`` parsed as JSON of the schema, or raise :class:`InvalidOutputError` saying why not."""
        if not isinstance(text, str):
            raise InvalidOutputError(f"expected a JSON text, got {type(text).__name__}")
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidOutputError(f"not JSON: {exc}") from None
        error = self._best_match(self._validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            raise InvalidOutputError(f"does not match the schema at {where}: {error.message}")
        return value

    def response_format(self) -> dict[str, Any]:
        """Ask for this schema in OpenAI's words (sent where the request asks for no format of its own)."""
        return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": self.schema}}


#: the tasks whose result is generated text, which ``output_schema`` can check
GENERATING_TASKS = ("text-generation", "chat-completion", "completion")


def structured_task(
    task: InferenceTask,
    engine: Engine,
    *,
    asked_by: str | None = None,
    output_schema: OutputSchema | None = None,
) -> InferenceTask:
    """
    Return ``task`` asking ``engine`` for structured output in its spelling, and checking its answers.

    :param task: the task as the engine serves it.
    :param engine: the endpoint's engine.
    :param asked_by: the argument whose ``response_format`` asks for structured output, if one does:
        refused, naming it, where the engine's route cannot constrain its answers.
    :param output_schema: the schema answers must match: asked for in the engine's spelling where the
        jobs ask for no format of their own and the route can constrain answers; each answer is
        checked and stored parsed.
    """
    spelling = engine.structured_output.get(task.name)
    if asked_by is not None and spelling is None:
        can = [name for name in engine.structured_output if name in GENERATING_TASKS]
        raise InvalidEndpointArgumentError(
            asked_by,
            f"{engine.name} cannot constrain {task.name} answers to JSON (no response_format there)",
            (f"use task {' or '.join(can)}" if can else "use an engine that can (TGI, vLLM, SGLang)")
            + ", or leave response_format out and check the answers with output_schema",
        )
    body = task.body
    if spelling is not None and (asked_by is not None or output_schema is not None):
        wanted = output_schema.response_format() if output_schema is not None else None
        build, spell = task.body, spelling

        def body(item: Any, parameters: dict[str, Any]) -> Any:
            if wanted is not None and "response_format" not in parameters:
                parameters = {**parameters, "response_format": wanted}
            return spell(build(item, parameters))

    validate = None
    if output_schema is not None:
        schema = output_schema
        validate = lambda item, output: schema.parse(output)
    return dataclasses.replace(task, body=body, validate=validate)
