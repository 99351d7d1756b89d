"""When and how long to wait before repeating a request: one policy for every client in the package."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

# Answers of a model server that mean "not processed, try again later". 500 is not among them there:
# it usually means this input broke the model, and repeating it only hides the model's message.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# The management API checks a request (400 when it is at fault) before acting on it, so its 500s are
# the service's own trouble and pass: they are repeated too, and the last message is kept if they persist.
MANAGEMENT_RETRYABLE_STATUSES = RETRYABLE_STATUSES | {500}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """
    Exponential backoff with jitter, honouring ``Retry-After``.

    :param max_retries: how many times a request may be repeated after its first try.
    :param backoff_base: the first delay's upper bound, in seconds; it doubles at each retry.
    :param backoff_max: the largest delay without a ``Retry-After``, in seconds.
    :param retry_after_max: the largest ``Retry-After`` honoured, in seconds (a server asking for an
        hour is not waited for blindly).
    """

    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        for field, value in vars(self).items():
            if value < 0:
                raise InvalidEndpointArgumentError(field, f"{value} is negative", "use a value >= 0")

    def delay(
        self, retry_number: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """
        Seconds to sleep before retry number ``retry_number`` (1 for the first retry).

        Half fixed, half random ("equal jitter"): spread enough that many clients backing off
        together do not return in lockstep, never so short that a retry comes back at once.
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        cap = min(self.backoff_max, self.backoff_base * 2 ** max(0, retry_number - 1))
        return (rng or random).uniform(cap / 2, cap)
