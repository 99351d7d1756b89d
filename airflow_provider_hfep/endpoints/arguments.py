"""
The checks every layer applies to its arguments, raising the package's one error for bad arguments.

:class:`~airflow_provider_hfep.endpoints.errors.InvalidEndpointArgumentError` names the field, what is
wrong with the value and the fix, and is a ``ValueError``: the client, the hook, the operators, the
sensor, the trigger and the window all refuse bad input through these functions, before any request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence

_TRUE_WORDS, _FALSE_WORDS = ("true", "1", "yes"), ("false", "0", "no")


def check_choice(field: str, value: Any, choices: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming the field and the choices."""
    if value not in choices:
        raise InvalidEndpointArgumentError(
            field, f"{value!r} is not allowed", f"use one of {', '.join(choices)}"
        )


def check_seconds(field: str, value: Any) -> None:
    """Refuse anything but a positive number of seconds."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise InvalidEndpointArgumentError(
            field, f"{value!r} is not a positive number of seconds", "use e.g. 30"
        )


def check_count(field: str, value: Any, minimum: int) -> None:
    """Refuse anything but an integer of at least ``minimum`` (``True`` is not a count)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidEndpointArgumentError(
            field, f"{value!r} is not an integer >= {minimum}", f"use e.g. {max(minimum, 4)}"
        )


def as_bool(field: str, value: Any) -> bool:
    """Read a boolean that may come as text (connection extras typed in a form): true/false, 1/0, yes/no."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (*_TRUE_WORDS, *_FALSE_WORDS):
        return value.strip().lower() in _TRUE_WORDS
    raise InvalidEndpointArgumentError(field, f"{value!r} is not a boolean", "use true or false")


def is_boolean_word(value: Any) -> bool:
    """Tell whether ``value`` reads as a boolean for :func:`as_bool`."""
    return isinstance(value, bool) or (
        isinstance(value, str) and value.strip().lower() in (*_TRUE_WORDS, *_FALSE_WORDS)
    )
