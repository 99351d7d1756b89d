"""Names written literally in a DAG are checked when the DAG is parsed (an import error at once, not a
failed task at night); templated ones are checked after rendering, before any request."""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep.endpoints.payloads import validate_endpoint_name, validate_namespace


def is_literal(value: Any) -> bool:
    """A string with no Jinja in it: what it says now is what the task will use."""
    return isinstance(value, str) and "{{" not in value and "{%" not in value


def check_names_now(endpoint_name: Any, namespace: Any) -> None:
    """Validate ``endpoint_name`` and ``namespace`` now when they are literal."""
    if is_literal(endpoint_name):
        validate_endpoint_name(endpoint_name)
    if namespace is not None and is_literal(namespace):
        validate_namespace(namespace)
