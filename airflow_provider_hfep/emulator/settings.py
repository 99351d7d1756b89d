"""
How the emulated cloud behaves, declared once.

:class:`Settings` is the one list of the emulator's knobs: each field's type, default and help text
make the ``hfep-emulator`` command-line options (:func:`add_options`, :func:`from_options`), the
keyword arguments of :class:`~airflow_provider_hfep.emulator.Emulator` (:func:`from_keywords`, then
:func:`to_argv` for its child process) and the state's configuration. A new knob is one field here.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

#: the environment variable that carries the control API's token (never a command-line argument,
#: which every user of the machine can read in the process list)
CONTROL_TOKEN_ENV = "HFEP_EMULATOR_CONTROL_TOKEN"


@dataclass(frozen=True)
class User:
    """A token holder: a user name, its token and the organisations it belongs to."""

    name: str
    token: str
    orgs: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> User:
        """Parse ``NAME:TOKEN[:ORG,...]`` (the ``--user`` option)."""
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise ValueError(f"--user {text!r}: expected NAME:TOKEN[:ORG,...]")
        orgs = tuple(o for o in parts[2].split(",") if o) if len(parts) == 3 else ()
        return cls(parts[0], parts[1], orgs)

    def __str__(self) -> str:
        return f"{self.name}:{self.token}" + (f":{','.join(self.orgs)}" if self.orgs else "")

    def may_act_in(self, namespace: str) -> bool:
        return namespace == self.name or namespace in self.orgs


QuotaKey = tuple[str, str, str]
#: (vendor, region, instance type): where the cloud has (or lacks) an instance type
HardwareKey = tuple[str, str, str]
#: how much of an instance type a region has now, as the hardware listing says it (2026 ``ComputeStatus``)
AVAILABILITY = ("available", "low_availability", "not_available")


def parse_quota(text: str) -> tuple[QuotaKey, int]:
    """Parse ``NAMESPACE:VENDOR:INSTANCE_TYPE:MAX`` (the ``--quota`` option)."""
    parts = text.split(":")
    if len(parts) != 4 or not parts[3].isdigit():
        raise ValueError(f"--quota {text!r}: expected NAMESPACE:VENDOR:INSTANCE_TYPE:MAX")
    return (parts[0], parts[1], parts[2]), int(parts[3])


def parse_availability(text: str) -> tuple[HardwareKey, str]:
    """Parse ``VENDOR:REGION:INSTANCE_TYPE:STATUS`` (the ``--availability`` option)."""
    parts = text.split(":")
    if len(parts) != 4 or parts[3] not in AVAILABILITY:
        raise ValueError(
            f"--availability {text!r}: expected VENDOR:REGION:INSTANCE_TYPE:STATUS, "
            f"STATUS one of {', '.join(AVAILABILITY)}"
        )
    return (parts[0], parts[1], parts[2]), parts[3]


def _knob(default: Any, help: str, **more: Any) -> Any:
    """Declare a setting: its default and the help its command-line option shows."""
    if isinstance(default, (tuple, dict)):
        return field(default_factory=lambda: default, metadata={"help": help, **more})
    return field(default=default, metadata={"help": help, **more})


@dataclass
class Settings:
    """How the emulated cloud behaves. Every field is an ``hfep-emulator`` option and an ``Emulator`` argument."""

    users: tuple[User, ...] = _knob(
        (User("demo", "hf_demo_token"),),
        "a user, its token and organisations; repeatable (default demo:hf_demo_token)",
        flag="--user",
        metavar="NAME:TOKEN[:ORG,...]",
        item=User.parse,
    )
    deploy_seconds: float = _knob(3.0, "pending+initializing time of a deploy, resume or update")
    cold_start_seconds: float = _knob(2.0, "wake-up time of a scaled-to-zero endpoint")
    update_lag_seconds: float = _knob(0.3, "how long reads still show the old state after a PUT")
    latency_ms: float = _knob(20.0, "time each inference request takes")
    item_latency_ms: float = _knob(0.0, "extra time per input a request carries")
    capacity: int = _knob(32, "requests in flight per replica before 429")
    scale_up_seconds: float = _knob(
        5.0, "autoscaling: seconds of load before a replica is added (up to maxReplica)"
    )
    scale_down_seconds: float = _knob(60.0, "autoscaling: seconds idle before an added replica is removed")
    max_client_batch_size: int = _knob(32, "inputs a TEI endpoint takes in one request before answering 413")
    default_quota: int = _knob(64, "accelerators of each type a namespace may hold by default")
    quotas: dict[QuotaKey, int] = _knob(
        {},
        "accelerators a namespace may hold of one type; repeatable (default: --default-quota of each)",
        flag="--quota",
        metavar="NAMESPACE:VENDOR:INSTANCE_TYPE:MAX",
        item=parse_quota,
    )
    availability: dict[HardwareKey, str] = _knob(
        {},
        "how much of an instance type a region has: available, low_availability (a deployment may stay "
        "pending) or not_available (refused); repeatable (default: every type available)",
        flag="--availability",
        metavar="VENDOR:REGION:INSTANCE_TYPE:STATUS",
        item=parse_availability,
    )
    logs_v3: bool = _knob(True, "serve the v3 (searchable) logs; --no-logs-v3 answers them 501, as some do")
    page_size: int = _knob(20, "endpoints per listing page when the caller gives no limit")
    minute_seconds: float = _knob(
        60.0,
        "seconds an emulated minute lasts (scaleToZeroTimeout counts in minutes): 1 makes 15 minutes 15 s",
    )
    request_log_size: int = _knob(50_000, "requests the log keeps (the oldest go first)")
    request_body_bytes: int = _knob(
        64 * 1024, "bytes of a request body the log keeps (a larger one is not kept)"
    )


def _fields() -> list[tuple[dataclasses.Field[Any], Any]]:
    hints = typing.get_type_hints(Settings)
    return [(f, hints[f.name]) for f in dataclasses.fields(Settings)]


def _flag(f: dataclasses.Field[Any]) -> str:
    return f.metadata.get("flag", f"--{f.name.replace('_', '-')}")


def _switch(f: dataclasses.Field[Any]) -> str:
    """Name a boolean's option, which flips its default: ``--no-logs-v3`` for a setting on by default."""
    return f"--no-{f.name.replace('_', '-')}" if f.default else _flag(f)


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add one command-line option per setting."""
    for f, kind in _fields():
        if "item" in f.metadata:
            parser.add_argument(
                _flag(f),
                dest=f.name,
                action="append",
                type=_argument_type(f.metadata["item"]),
                default=None,
                metavar=f.metadata["metavar"],
                help=f.metadata["help"],
            )
        elif kind is bool:
            parser.add_argument(
                _switch(f),
                dest=f.name,
                action="store_false" if f.default else "store_true",
                help=f.metadata["help"],
            )
        else:
            parser.add_argument(
                _flag(f),
                dest=f.name,
                type=kind,
                default=f.default,
                help=f"{f.metadata['help']} (default {f.default})",
            )


def _argument_type(parse: Any) -> Any:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def from_options(options: argparse.Namespace) -> Settings:
    """Build the settings from parsed command-line options."""
    values: dict[str, Any] = {}
    for f, kind in _fields():
        value = getattr(options, f.name)
        if "item" in f.metadata:
            if value is None:
                continue
            value = dict(value) if typing.get_origin(kind) is dict else tuple(value)
        values[f.name] = value
    return Settings(**values)


def from_keywords(**keywords: Any) -> Settings:
    """
    Build the settings from ``Emulator(...)``'s keyword arguments.

    Repeatable settings take their command-line text too: ``users=["demo:hf_demo_token"]``,
    ``quotas=["demo:aws:nvidia-l4:4"]``.
    """
    known = {f.name: (f, kind) for f, kind in _fields()}
    unknown = sorted(set(keywords) - set(known))
    if unknown:
        raise TypeError(f"unknown emulator settings: {', '.join(unknown)} (known: {', '.join(known)})")
    values: dict[str, Any] = {}
    for name, given in keywords.items():
        f, kind = known[name]
        if "item" in f.metadata:
            items = [f.metadata["item"](v) if isinstance(v, str) else v for v in given]
            values[name] = dict(items) if typing.get_origin(kind) is dict else tuple(items)
        else:
            values[name] = given
    return Settings(**values)


def to_argv(settings: Settings) -> list[str]:
    """Write the settings as ``hfep-emulator`` options (those that differ from the defaults)."""
    argv: list[str] = []
    defaults = Settings()
    for f, kind in _fields():
        value = getattr(settings, f.name)
        if value == getattr(defaults, f.name):
            continue
        if "item" in f.metadata:
            texts = (
                [f"{':'.join(k)}:{v}" for k, v in value.items()]
                if isinstance(value, dict)
                else map(str, value)
            )
            for text in texts:
                argv += [_flag(f), text]
        elif kind is bool:
            argv.append(_switch(f))
        else:
            argv += [_flag(f), str(value)]
    return argv
