"""
The request layer every management call is written on: *plans*, generators of :class:`Send` and :class:`Sleep`.

A plan does no I/O: :mod:`airflow_provider_hfep.endpoints.client` carries the instructions out, once
with ``httpx.Client`` and once with ``httpx.AsyncClient``, so the sync and async clients cannot drift
apart. :class:`Exchange` is what every plan sends through: a request repeated on transient failures
(backoff, ``Retry-After``), an error answer made a typed error, a redirect followed only where nothing
can leak, the API's clock read from its answers; :func:`decode` reads any answer or says why not.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from airflow_provider_hfep.endpoints.errors import (
    EndpointsTimeoutError,
    EndpointsTransportError,
    MalformedAnswerError,
    RedirectRefusedError,
    error_from_response,
)
from airflow_provider_hfep.endpoints.retry import (
    MANAGEMENT_RETRYABLE_STATUSES,
    RetryPolicy,
    parse_retry_after,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds between this machine's clock and the API's ``Date`` taken as no skew (the header counts
#: whole seconds; a request takes some too)
CLOCK_SKEW_TOLERANCE = 2.0
#: redirects followed in a row (same-origin GETs only)
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def decode(response: httpx.Response, read: Callable[[Any], T] = lambda body: body) -> T:
    """
    Read a JSON answer with ``read``; anything else is a :class:`MalformedAnswerError`, never a crash.

    A proxy's HTML page, invalid JSON, a list where an object belongs, a missing or mistyped field:
    each names the route, the status and the start of the body.
    """
    kind = response.headers.get("content-type", "")
    if kind and "json" not in kind.lower():
        raise MalformedAnswerError.of(response, f"content type {kind!r}, not JSON")
    try:
        return read(response.json())
    except (ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        problem = (
            "invalid JSON" if isinstance(exc, ValueError) and not str(exc) else f"{type(exc).__name__}: {exc}"
        )
        raise MalformedAnswerError.of(response, problem[:200]) from None


def _origin(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parts = httpx.URL(str(url))
    return parts.scheme, parts.host, parts.port


@dataclass(frozen=True)
class Send:
    """Instruction: send one HTTP request and hand back the response (or throw the transport error)."""

    method: str
    url: str
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    params: dict[str, str | int] | None = None


@dataclass(frozen=True)
class Sleep:
    """Instruction: pause for ``seconds``."""

    seconds: float


Plan = Generator[Send | Sleep, Any, T]


class Exchange:
    """
    How one request of a plan is sent and its answer taken: the part every call shares.

    :param retry: the retry policy for requests that are safe to repeat.
    :param allow_insecure_http: plain http to another machine is allowed (the endpoint URLs included).
    """

    def __init__(self, *, retry: RetryPolicy, allow_insecure_http: bool = False) -> None:
        self.retry = retry
        self.allow_insecure_http = allow_insecure_http
        #: the API's clock minus this machine's, from the ``Date`` of its answers (0 until one came)
        self.clock_offset = 0.0

    def now(self) -> float:
        """
        Return the time on the API's clock (epoch seconds), as far as its answers' ``Date`` headers tell.

        Deadlines that travel between machines (a worker defers, a triggerer waits) are written and
        read on this one clock, so a skew between the two machines' clocks does not move them.
        """
        return time.time() + self.clock_offset

    def _observe_clock(self, response: httpx.Response) -> None:
        date = response.headers.get("date")
        if not date:
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, OverflowError):
            return
        # The header counts whole seconds: the API's time is, on average, half a second later. A
        # difference within the header's resolution is no skew: this machine's clock is kept then, so
        # short deadlines do not jump by a second.
        offset = server + 0.5 - time.time()
        self.clock_offset = offset if abs(offset) > CLOCK_SKEW_TOLERANCE else 0.0

    def exchange(
        self,
        send: Send,
        *,
        retry_statuses: frozenset[int] = MANAGEMENT_RETRYABLE_STATUSES,
        retry_transport: bool = True,
    ) -> Plan[httpx.Response]:
        """Send ``send``, repeating it on transient failures; return the last response, whatever its status."""
        retries = redirects = 0
        while True:
            try:
                response: httpx.Response = yield send
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}"
                if not retry_transport or retries >= self.retry.max_retries:
                    cls = (
                        EndpointsTimeoutError
                        if isinstance(exc, httpx.TimeoutException)
                        else EndpointsTransportError
                    )
                    tries = retries + 1
                    raise cls(
                        f"{send.method} {urlsplit(send.url).path}: no answer after {tries} tr{'y' if tries == 1 else 'ies'} ({reason}: {exc})"
                    ) from None
                delay = self.retry.delay(retries + 1)
            else:
                self._observe_clock(response)
                if response.status_code in _REDIRECTS:
                    send = self._redirected(send, response, redirects)
                    redirects += 1
                    continue
                if response.status_code not in retry_statuses or retries >= self.retry.max_retries:
                    response.extensions["hfep_retries"] = retries
                    return response
                reason = f"HTTP {response.status_code}"
                delay = self.retry.delay(retries + 1, parse_retry_after(response.headers.get("retry-after")))
            retries += 1
            log.warning(
                "%s %s: %s, retry %d/%d in %.2f s",
                send.method,
                urlsplit(send.url).path,
                reason,
                retries,
                self.retry.max_retries,
                delay,
            )
            yield Sleep(delay)

    @staticmethod
    def _redirected(send: Send, response: httpx.Response, redirects: int) -> Send:
        """
        Follow a redirect only where nothing can leak: a GET (no body) to the same origin.

        Anything else (an update's body holds the endpoint's secrets, another host would get the
        token) is refused with the location named.
        """
        location = response.headers.get("location", "")
        target = response.request.url.join(location) if location else None
        if (
            target is None
            or send.method != "GET"
            or _origin(target) != _origin(response.request.url)
            or redirects >= MAX_REDIRECTS
        ):
            why = "too many redirects" if redirects >= MAX_REDIRECTS else "not followed"
            raise RedirectRefusedError(
                response.status_code,
                f"the API redirected to {location or '(no location)'} ({why}: only a GET to the same "
                "origin is followed, so neither a request body nor the token goes elsewhere)",
                method=send.method,
                path=response.request.url.path,
            )
        return dataclasses.replace(send, url=str(target), params=None)

    def request(self, send: Send, **retry: Any) -> Plan[httpx.Response]:
        """:meth:`exchange`, then raise the typed error of an error status."""
        response = yield from self.exchange(send, **retry)
        if response.is_error:
            response.read()
            error = error_from_response(response)
            error.retries = response.extensions.get("hfep_retries", 0)
            raise error
        return response
