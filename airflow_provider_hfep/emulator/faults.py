"""
Injected faults: which requests fail, and how.

A fault is ``SCOPE:KIND:RATE`` on the command line (``inference:503:0.2``) or a JSON object through
the control API, which may also limit it to a ``count`` of requests, an HTTP ``method``, and choose
the ``phase``: ``before`` (the request is refused unprocessed) or ``after`` (it is processed, then
the answer is lost: the case where blindly repeating a create would duplicate it). ``invalid_output``
is no HTTP failure: a request asking for structured output is answered 200, with text that is not
JSON of its schema (the model went astray); requests asking for none never get it.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

SCOPES = ("management", "inference", "health", "server")
KINDS = ("429", "500", "502", "503", "reset", "timeout", "invalid_output")
#: the kind that spoils a structured answer instead of failing the request
INVALID_OUTPUT = "invalid_output"
PHASES = ("before", "after")


@dataclass
class Fault:
    """
    One fault rule.

    :param scope: ``management`` (``/v2``, ``/api``), ``inference`` (data-plane POSTs), ``health`` (the
        health route), or ``server`` (the data plane's other GETs: ``/info``, ``/v1/models``).
    :param kind: an HTTP status (``429``, ``500``, ``502``, ``503``), ``reset`` (the connection is
        aborted), ``timeout`` (no answer until the client gives up), or ``invalid_output`` (an
        ``inference`` request asking for structured output gets words, not JSON of its schema).
    :param rate: probability that a matching request gets it.
    :param count: at most this many requests get it (``None``: no limit).
    :param method: only requests with this HTTP method.
    :param phase: ``before`` or ``after`` processing (``after`` only with ``reset``/``timeout``).
    :param retry_after: a ``Retry-After`` value (seconds) to send with 429/503.
    """

    scope: str
    kind: str
    rate: float = 1.0
    count: int | None = None
    method: str | None = None
    phase: str = "before"
    retry_after: float | None = None
    hits: int = 0

    def __post_init__(self) -> None:
        self.kind = str(self.kind)
        if self.scope not in SCOPES:
            raise ValueError(f"fault scope {self.scope!r}: use one of {', '.join(SCOPES)}")
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if not 0.0 <= float(self.rate) <= 1.0:
            raise ValueError(f"fault rate {self.rate!r}: use a probability between 0 and 1")
        if self.phase not in PHASES or (self.phase == "after" and self.kind not in ("reset", "timeout")):
            raise ValueError("fault phase: 'before', or 'after' with kind reset or timeout")
        if self.kind == INVALID_OUTPUT and self.scope != "inference":
            raise ValueError("fault kind invalid_output: only in scope inference")
        self.rate = float(self.rate)
        self.method = self.method.upper() if self.method else None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse ``SCOPE:KIND:RATE`` (the ``--fault`` option)."""
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"--fault {text!r}: expected SCOPE:KIND:RATE, e.g. inference:503:0.2")
        return cls(parts[0], parts[1], float(parts[2]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """
    The active faults and the seeded dice that decide which request gets one.

    Each scope throws its own dice: with a seed, the n-th management call gets the same fault
    however much inference traffic ran in between.
    """

    def __init__(self, faults: list[Fault] | None = None, seed: int | None = None) -> None:
        self.replace(list(faults or []), seed)

    def replace(self, faults: list[Fault], seed: int | None) -> None:
        self.faults = faults
        self.seed = seed
        self._dice = {scope: random.Random(None if seed is None else f"{seed}:{scope}") for scope in SCOPES}

    def pick(self, scope: str, method: str, structured: bool = False) -> Fault | None:
        """
        Pick the fault this request gets, if any (at most one: the first rule that fires).

        ``structured``: the request asks for structured output (only those get ``invalid_output``).
        """
        for fault in self.faults:
            if fault.scope != scope or (fault.method and fault.method != method):
                continue
            if fault.kind == INVALID_OUTPUT and not structured:
                continue
            if fault.count is not None and fault.hits >= fault.count:
                continue
            if fault.rate >= 1.0 or self._dice[scope].random() < fault.rate:
                fault.hits += 1
                return fault
        return None
