"""
Ordered hardware alternatives: where an endpoint may run, best first, and what counts as "no capacity".

A list of :class:`HardwareChoice` is what ``hardware=[...]`` of the create and resume operators and of
``endpoint_window`` becomes, checked when the DAG is parsed. The 2026 update body
(``EndpointUpdate``) carries ``compute`` and ``model`` only: an endpoint's ``provider`` (vendor and
region) is fixed when it is created, so moving to another vendor or region would take a new endpoint.
The choices of one list therefore share one vendor and region, and differ in instance type, size and
accelerator: each move is an update of the endpoint's compute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.payloads import EndpointUpdate, validate_arguments

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_provider_hfep.endpoints.models import InferenceEndpoint

#: what the service says when it lacks the hardware: a refusal, a pending endpoint's or a failure's message
CAPACITY_MESSAGE = re.compile(
    r"insufficient capacity|no capacity|not enough capacity|out of (?:gpu )?capacity|quota", re.IGNORECASE
)
REQUIRED = ("vendor", "region", "instance_type", "instance_size")
FIELDS = (*REQUIRED, "accelerator")
_SIZE = re.compile(r"x[1-9]\d*")


def is_capacity_message(text: str | None) -> bool:
    """Tell whether the service's ``text`` says it lacks capacity (or quota) for the hardware."""
    return bool(text) and CAPACITY_MESSAGE.search(text or "") is not None


@dataclass(frozen=True)
class HardwareChoice:
    """
    One place an endpoint may run: the key of the hardware listing, and the accelerator if it differs.

    :param vendor: the cloud, e.g. ``aws``.
    :param region: e.g. ``us-east-1``.
    :param instance_type: e.g. ``nvidia-l4``.
    :param instance_size: e.g. ``x1``.
    :param accelerator: ``cpu``, ``gpu`` or ``neuron``, when it differs from the endpoint's.
    """

    vendor: str
    region: str
    instance_type: str
    instance_size: str
    accelerator: str | None = None

    @property
    def label(self) -> str:
        """Say it the way a log line does: ``nvidia-l4 x1 in aws/us-east-1``."""
        return f"{self.instance_type} {self.instance_size} in {self.vendor}/{self.region}"

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.vendor, self.region, self.instance_type, self.instance_size

    def runs(self, endpoint: InferenceEndpoint) -> bool:
        """Tell whether ``endpoint`` is on this hardware now."""
        return endpoint.hardware == self.key

    def update(self) -> EndpointUpdate:
        """Make the compute change that moves an endpoint (of this vendor and region) here."""
        return EndpointUpdate(
            instance_type=self.instance_type, instance_size=self.instance_size, accelerator=self.accelerator
        )

    def to_json(self) -> dict[str, Any]:
        found = {name: getattr(self, name) for name in FIELDS}
        return {name: value for name, value in found.items() if value is not None}


def parse_hardware(value: Any, *, field: str = "hardware") -> tuple[HardwareChoice, ...]:
    """
    Read ``hardware=[...]``: dicts (or choices) with ``vendor``, ``region``, ``instance_type``, ``instance_size``.

    Refuses, naming the field (``hardware[1].instance_size``) and the fix: anything but a non-empty
    list, an unknown or missing key, an empty value, a size that is not ``xN``, a bad accelerator,
    the same hardware twice, or choices on different vendors or regions (see the module's note).
    """
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise InvalidEndpointArgumentError(
            field,
            f"{type(value).__name__} is not a list of choices",
            "give a list of dicts, best first, e.g. [{'vendor': 'aws', 'region': 'us-east-1', "
            "'instance_type': 'nvidia-a100', 'instance_size': 'x1'}, ...]",
        )
    choices = [_choice(item, f"{field}[{index}]") for index, item in enumerate(value)]
    if not choices:
        raise InvalidEndpointArgumentError(field, "the list is empty", "give at least one choice")
    first = choices[0]
    for index, choice in enumerate(choices):
        for part in ("vendor", "region"):
            if getattr(choice, part) != getattr(first, part):
                raise InvalidEndpointArgumentError(
                    f"{field}[{index}].{part}",
                    f"{getattr(choice, part)!r} differs from the first choice's {getattr(first, part)!r}: "
                    "an update cannot move an endpoint to another vendor or region (the API's update "
                    "body carries compute and model only; the provider is fixed at creation)",
                    "keep one vendor and region per list; for another region, use another endpoint",
                )
        if choice.key in [c.key for c in choices[:index]]:
            raise InvalidEndpointArgumentError(
                f"{field}[{index}]", f"{choice.label} is listed twice", "list each hardware once"
            )
    return tuple(choices)


def _choice(item: Any, where: str) -> HardwareChoice:
    if isinstance(item, HardwareChoice):
        return item
    if not isinstance(item, dict):
        raise InvalidEndpointArgumentError(
            where, f"{type(item).__name__} is not a dict", f"give a dict with {', '.join(REQUIRED)}"
        )
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise InvalidEndpointArgumentError(
            f"{where}.{unknown[0]}", "is not a hardware field", f"use only {', '.join(FIELDS)}"
        )
    for name in FIELDS:
        given = item.get(name)
        if name in REQUIRED and given is None:
            raise InvalidEndpointArgumentError(
                f"{where}.{name}", "is missing", f"give {name}, e.g. {_EXAMPLES[name]!r}"
            )
        if given is not None and (not isinstance(given, str) or not given.strip()):
            raise InvalidEndpointArgumentError(
                f"{where}.{name}", f"{given!r} is not a non-empty string", f"e.g. {_EXAMPLES[name]!r}"
            )
    if not _SIZE.fullmatch(item["instance_size"]):
        raise InvalidEndpointArgumentError(
            f"{where}.instance_size", f"{item['instance_size']!r} is not a size", "use x1, x2, x4, x8..."
        )
    try:
        validate_arguments({"accelerator": item.get("accelerator")})
    except InvalidEndpointArgumentError as exc:
        raise InvalidEndpointArgumentError(f"{where}.accelerator", exc.problem, exc.fix) from None
    return HardwareChoice(**item)


_EXAMPLES = {
    "vendor": "aws",
    "region": "us-east-1",
    "instance_type": "nvidia-l4",
    "instance_size": "x1",
    "accelerator": "gpu",
}


def index_of(choices: Sequence[HardwareChoice], endpoint: InferenceEndpoint) -> int | None:
    """Return the position of the choice ``endpoint`` runs on now, ``None`` if it runs on none of them."""
    return next((index for index, choice in enumerate(choices) if choice.runs(endpoint)), None)


def tried_summary(tried: Sequence[dict[str, Any]]) -> str:
    """Say what was tried and why each failed: ``1. nvidia-a100 x1 in aws/us-east-1: not_available; 2. ...``."""
    return "; ".join(f"{entry['choice']}. {entry['hardware']}: {entry['reason']}" for entry in tried)
