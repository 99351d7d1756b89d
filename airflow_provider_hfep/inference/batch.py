"""
The async batch runner: many jobs through one endpoint, bounded and adaptive concurrency, nothing lost.

Every input ends with exactly one :class:`ItemResult`, handed to ``on_result`` as it arrives (the
caller orders or stores them). Transient answers (429, 502, 503, 504, timeouts, resets) are retried
with backoff honouring ``Retry-After``; an overloaded endpoint (429) lowers the concurrency to what it
accepts instead of being hammered, and a scaled-to-zero endpoint is woken and waited for.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_hfep.endpoints.errors import AnswerTooLargeError, EndpointsError, server_message
from airflow_provider_hfep.endpoints.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after
from airflow_provider_hfep.endpoints.transport import DEFAULT_MAX_ANSWER_BYTES, bounded, tls_verification
from airflow_provider_hfep.inference.structured import InvalidOutputError
from airflow_provider_hfep.inference.tasks import MAX_NESTING, nesting_depth

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator

    from airflow_provider_hfep.inference.tasks import InferenceTask

log = logging.getLogger(__name__)

FATAL = frozenset({401, 403, 404})


class BatchAbortedError(EndpointsError):
    """The endpoint refused the batch as a whole (bad token, no access, no such route)."""


@dataclass(frozen=True)
class BatchSettings:
    """
    How a batch runs.

    :param max_concurrency: requests in flight at most (the adaptive limit stays at or below it).
    :param request_timeout: seconds one request may take.
    :param max_retries: retries of one input after transient failures (cold-start waits not counted).
    :param wake_scaled_to_zero: send ``X-Scale-Up-Timeout`` so a scaled-to-zero endpoint starts and
        holds the requests, and keep retrying 503s until ``cold_start_timeout``.
    :param cold_start_timeout: seconds a waking endpoint is waited for.
    :param batch_size: inputs sent in one request, for tasks whose route takes a list (feature
        extraction, classification, embeddings); 1 sends one input per request. A group the endpoint
        refuses (a 4xx: too many inputs, or one bad input among them) is split in halves and sent
        again, down to single inputs, so each input still ends with exactly one result; after a 413
        about the batch size, the groups that follow are no larger than what was taken.
    :param overload_timeout: seconds a batch may go without any input succeeding while the endpoint
        answers 429: until then a 429 is backpressure (the input waits its turn, its retries are not
        counted); after that, 429s count as failed attempts like any other.
    :param replica_poll_interval: seconds between two reads of the endpoint's replica count, when the
        batch is given a way to read it: the concurrency follows the replicas autoscaling adds or removes.
    :param progress_interval: seconds between two progress log lines.
    :param retry: backoff of retries.
    :param known_capacity: requests in flight the endpoint takes, as its servers state it (per replica
        times the replicas serving): the concurrency starts there (within ``max_concurrency``) and does
        not probe past it. ``None``: found by probing, from 16 up.
    :param invalid_output_retries: times an input whose answer the task's ``validate`` refuses (not
        JSON of the schema asked for) is sent again before it ends with an ``invalid_output`` error.
    """

    max_concurrency: int = 32
    request_timeout: float = 60.0
    max_retries: int = 8
    wake_scaled_to_zero: bool = True
    cold_start_timeout: float = 600.0
    overload_timeout: float = 300.0
    batch_size: int = 1
    replica_poll_interval: float = 2.0
    progress_interval: float = 30.0
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(backoff_base=0.05, backoff_max=10.0))
    known_capacity: int | None = None
    invalid_output_retries: int = 1


#: the kind of error of an input whose answers were not JSON of the schema asked for
INVALID_OUTPUT = "invalid_output"


@dataclass(frozen=True)
class ItemResult:
    """
    The one result of one input: its output, or the error that ended it.

    :param index: the input's index.
    :param output: its result (``None`` when it failed).
    :param error: why it failed.
    :param attempts: requests it took.
    :param kind: a failure's kind where it has one (``invalid_output``).
    :param request_id: the server's id of the request that answered it (``X-Request-Id``), if it gave one.
    """

    index: int
    output: Any = None
    error: str | None = None
    attempts: int = 1
    kind: str | None = None
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            return {"index": self.index, "output": self.output}
        if self.kind:
            return {"index": self.index, "error": self.error, "kind": self.kind}
        return {"index": self.index, "error": self.error}


@dataclass
class BatchSummary:
    """What a batch did: counts, time, requests and retries (XCom-ready with :meth:`to_dict`)."""

    total: int = 0
    succeeded: int = 0
    failed: int = 0
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    invalid_output: int = 0
    duration_s: float = 0.0
    concurrency: int = 0
    first_errors: list[dict[str, Any]] = field(default_factory=list)
    #: inputs in a row, at the end, that failed with a server error (5xx): an endpoint that broke
    ending_server_errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "throttled": self.throttled,
            "invalid_output": self.invalid_output,
            "duration_s": round(self.duration_s, 3),
            "final_concurrency": self.concurrency,
            "first_errors": self.first_errors,
        }


class AdaptiveLimit:
    """
    How many requests may be in flight: stated by the server, or found by probing.

    A server that states its capacity (TGI's and TEI's ``max_concurrent_requests``) gets it from the
    first request, and never more. Otherwise slow start doubles the limit after each window of
    successes until ``maximum`` or the first 429. When request *k* is refused, the requests sent before
    it and still in flight are the ones the endpoint accepted: their count is its capacity, and becomes
    the limit. After a run of successes the limit probes one higher (up to the stated capacity, if
    any), so a limit lowered by a passing overload climbs back instead of losing throughput for good.

    :param maximum: requests in flight at most, whatever the endpoint takes.
    :param initial: where probing starts.
    :param known: the capacity the endpoint's servers state, if they do.
    """

    def __init__(self, maximum: int, initial: int = 16, known: int | None = None) -> None:
        self.maximum = maximum
        self._known = known
        self._scale = 1.0  # replicas now / replicas when the capacity was stated
        self.limit = self.ceiling if known else min(maximum, initial)
        self._tickets: set[int] = set()
        self._next_ticket = 0
        self._slow_start = known is None
        self._successes = 0
        self._changed = asyncio.Condition()

    @property
    def ceiling(self) -> int:
        """The limit's upper bound: ``maximum``, or the stated capacity (for the replicas now) below it."""
        if self._known is None:
            return self.maximum
        return max(1, min(self.maximum, round(self._known * self._scale)))

    @property
    def in_flight(self) -> int:
        return len(self._tickets)

    async def acquire(self) -> int:
        """Wait for a free slot; return the request's ticket (its place in sending order)."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._tickets) < self.limit)
            ticket = self._next_ticket
            self._next_ticket += 1
            self._tickets.add(ticket)
            return ticket

    async def release(self, ticket: int, *, overloaded: bool) -> None:
        async with self._changed:
            self._tickets.discard(ticket)
            if overloaded:
                accepted = sum(1 for other in self._tickets if other < ticket)
                self.limit = max(1, min(self.limit, accepted))
                self._slow_start = False
                self._successes = 0
            else:
                self._successes += 1
                if self._successes >= (self.limit if self._slow_start else 4 * self.limit):
                    self.limit = min(self.ceiling, self.limit * 2 if self._slow_start else self.limit + 1)
                    self._successes = 0
            self._wake_for_free_slots()

    def _wake_for_free_slots(self) -> None:
        """Wake as many waiting requests as there are free slots (waking them all would cost each a look)."""
        free = self.limit - len(self._tickets)
        if free > 0:
            self._changed.notify(free)

    async def rescale(self, factor: float) -> None:
        """Scale the limit with the endpoint's capacity (replicas added or removed), within ``maximum``."""
        async with self._changed:
            self._scale *= factor
            self.limit = max(1, min(self.ceiling, round(self.limit * factor)))
            self._successes = 0
            self._wake_for_free_slots()


class ShardedTransport(httpx.AsyncBaseTransport):
    """
    One client's connections, split into small pools; each request goes to the least busy one.

    httpcore checks every pooled connection on every request, so one pool of 64 connections costs
    ~6 ms of CPU per request (measured here) where 8 pools of 8 cost 0.5 ms.

    :param connections: connections in all.
    :param per_pool: connections per pool.
    :param verify: TLS verification: ``True``, ``False`` or a CA bundle path.
    :param max_answer_bytes: bytes of one answer read at most (:class:`AnswerTooLargeError` past it).
    """

    def __init__(
        self,
        connections: int,
        per_pool: int = 8,
        verify: bool | str = True,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
    ) -> None:
        count = max(1, -(-connections // per_pool))
        limits = httpx.Limits(max_connections=per_pool, max_keepalive_connections=per_pool)
        tls = tls_verification(verify)
        self._pools = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(count)]
        self._busy = [0] * count
        self._max_answer_bytes = max_answer_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool = min(range(len(self._pools)), key=self._busy.__getitem__)
        self._busy[pool] += 1
        try:
            response = await self._pools[pool].handle_async_request(request)
            # Answers are small JSON: read here (bounded), so the pool is free when counted free. The
            # time is bounded by the caller (request_timeout around the whole exchange).
            await bounded(response, self._max_answer_bytes, float("inf"), request).aread()
            return response
        finally:
            self._busy[pool] -= 1

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


def batch_client(
    auth: httpx.Auth | None, max_concurrency: int, verify: bool | str = True
) -> httpx.AsyncClient:
    """Build the one ``httpx.AsyncClient`` a batch runs on: connections for ``max_concurrency``."""
    return httpx.AsyncClient(
        auth=auth, transport=ShardedTransport(max_concurrency, verify=verify), follow_redirects=False
    )


class _Outcome(Exception):
    """Internal: a retryable failure of one attempt, with the server's delay if any."""

    def __init__(
        self, reason: str, retry_after: float | None = None, cold: bool = False, overloaded: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.cold = cold
        self.overloaded = overloaded


class _Refused(Exception):
    """Internal: the endpoint refused the request (4xx, or a 5xx not worth repeating) as it is."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status

    @property
    def splits(self) -> bool:
        """Whether sending the group in halves may help: the request's own fault (4xx), not the server's."""
        return 400 <= self.status < 500

    @property
    def batch_too_large(self) -> bool:
        """A 413 about the number of inputs (TEI's max_client_batch_size), not about one long input."""
        return self.status == 413 and "batch size" in str(self).lower()


class BatchRun:
    """
    One batch in flight: workers take groups of inputs, send each until every input has its result.

    :param client: the HTTP client (its auth is the endpoint's token; its pool is reused).
    :param url: the endpoint's URL, as the API gave it.
    :param task: how to build requests and parse answers.
    :param parameters: parameters shared by every request.
    :param on_result: called once per input, as results arrive (not in input order).
    :param settings: concurrency, timeouts and retries.
    :param total: the number of inputs, for progress and ETA, when known.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        url: str,
        task: InferenceTask,
        parameters: dict[str, Any] | None,
        on_result: Callable[[ItemResult], None],
        settings: BatchSettings,
        total: int | None,
    ) -> None:
        self.client = client
        self.task = task
        self.parameters = dict(parameters or {})
        self.on_result = on_result
        self.settings = settings
        self.total = total
        self.url = url.rstrip("/")
        self.target = self._target_of(task.path)
        self.headers = (
            {"x-scale-up-timeout": str(int(settings.cold_start_timeout))}
            if settings.wake_scaled_to_zero
            else {}
        )
        self.limit = AdaptiveLimit(settings.max_concurrency, known=settings.known_capacity)
        self.summary = BatchSummary()
        self.started = time.monotonic()
        self.cold_deadline = self.started + settings.cold_start_timeout
        #: when an input last succeeded: a 429 is backpressure while this is recent
        self.last_success = self.started
        #: inputs in one request at most: lowered by a 413 about the batch size
        self.group_size = settings.batch_size if task.batch_body is not None else 1

    async def run(
        self, items: Iterable[tuple[int, Any]], replicas: Callable[[], Awaitable[int | None]] | None = None
    ) -> BatchSummary:
        """Send every ``(index, input)`` of ``items`` (read lazily); return the summary."""
        source = iter(items)
        beside = [asyncio.ensure_future(self._report_progress())]
        if replicas is not None:
            beside.append(asyncio.ensure_future(self._follow_replicas(replicas)))
        workers = [asyncio.ensure_future(self._work(source)) for _ in range(self.settings.max_concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for pending in (*beside, *workers):
                pending.cancel()
        summary = self.summary
        summary.total = summary.succeeded + summary.failed
        summary.duration_s = time.monotonic() - self.started
        summary.concurrency = self.limit.limit
        return summary

    async def _work(self, source: Iterator[tuple[int, Any]]) -> None:
        """Take groups from the shared iterator until it is empty (taking never awaits: each input once)."""
        while group := list(itertools.islice(source, self.group_size)):
            for result in await self._send(group):
                self._record(result)

    def _target_of(self, path: str) -> str:
        return self.url + (path if path != "/" else "")

    async def _send(self, group: list[tuple[int, Any]]) -> list[ItemResult]:
        """Send one group of inputs (often one input) until each has its one result."""
        if len(group) > self.group_size:  # a 413 lowered the size since this group was taken
            return await self._send_halves(group)
        retries = attempts = throttled = invalid = 0
        body, parse = self._request_of(group)
        route = self.task.route
        target = self.target if route is None else self._target_of(route(group[0][1]))
        while True:
            attempts += 1
            try:
                outputs, request_id = await self._attempt(body, parse, target)
                if len(outputs) != len(group):
                    raise ValueError(f"{len(outputs)} results for {len(group)} inputs")
                validate = self.task.validate
                if validate is not None:
                    outputs = [validate(item, out) for (_, item), out in zip(group, outputs)]
                return [
                    ItemResult(i, out, attempts=attempts, request_id=request_id)
                    for (i, _), out in zip(group, outputs)
                ]
            except (
                InvalidOutputError
            ) as exc:  # the answer came, but not as asked: asked again, then kept as such
                if invalid < self.settings.invalid_output_retries:
                    invalid += 1
                    self.summary.retries += 1
                    continue
                error = f"invalid output: {exc}"
                return [ItemResult(i, error=error, attempts=attempts, kind=INVALID_OUTPUT) for i, _ in group]
            except _Outcome as failure:
                counted = self._counts_as_retry(failure)
                if counted and retries >= self.settings.max_retries:
                    return [ItemResult(i, error=str(failure), attempts=attempts) for i, _ in group]
                retries += counted
                throttled = throttled + 1 if failure.overloaded else 0
                self.summary.retries += 1
                await asyncio.sleep(self._backoff(failure, max(1, retries, min(throttled, 8))))
            except (
                _Refused,
                AnswerTooLargeError,
                ValueError,
                KeyError,
                IndexError,
                TypeError,
                RecursionError,
            ) as exc:
                refused = exc if isinstance(exc, _Refused) else None
                if len(group) > 1 and (refused is None or refused.splits):
                    # Too many inputs, or one bad input among them: halves, until it is found. Only a
                    # 413 about the batch size lowers the size of the groups that follow.
                    if refused is not None and refused.batch_too_large:
                        self.group_size = max(1, min(self.group_size, len(group) // 2))
                    return await self._send_halves(group)
                error = str(exc) if refused is not None else f"unexpected answer: {type(exc).__name__}: {exc}"
                return [ItemResult(i, error=error, attempts=attempts) for i, _ in group]

    async def _send_halves(self, group: list[tuple[int, Any]]) -> list[ItemResult]:
        half = len(group) // 2
        return [*await self._send(group[:half]), *await self._send(group[half:])]

    def _request_of(self, group: list[tuple[int, Any]]) -> tuple[Any, Callable[[Any], list[Any]]]:
        """Build the body and the parser of one request: one input as the task sends it, or a list."""
        task = self.task
        if task.batch_body is None or task.batch_parse is None or (len(group) == 1 and self.group_size == 1):
            parse_one = task.parse
            return task.body(group[0][1], self.parameters), lambda answer: [parse_one(answer)]
        return task.batch_body([item for _, item in group], self.parameters), task.batch_parse

    async def _attempt(
        self, body: Any, parse: Callable[[Any], list[Any]], target: str
    ) -> tuple[list[Any], str | None]:
        """Send one request within the limit; its outputs and the server's request id, or the failure as an exception."""
        limit, settings = self.limit, self.settings
        ticket = await limit.acquire()
        overloaded = False
        try:
            self.summary.requests += 1
            # The whole exchange within request_timeout: httpx's own timeouts bound each read only.
            async with asyncio.timeout(settings.request_timeout):
                response = await self.client.post(
                    target, json=body, headers=self.headers, timeout=settings.request_timeout
                )
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise _Outcome(f"timeout after {settings.request_timeout} s ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise _Outcome(f"connection error ({type(exc).__name__}: {exc})") from None
        else:
            status = response.status_code
            if status == 200:
                answer = response.json()
                if nesting_depth(answer) > MAX_NESTING:
                    raise ValueError(f"the answer nests deeper than {MAX_NESTING} levels")
                return parse(answer), response.headers.get("x-request-id")
            message = server_message(response) or response.reason_phrase
            if status in FATAL:
                raise BatchAbortedError(f"the endpoint answered {status} to {target}: {message}")
            if status in RETRYABLE_STATUSES:
                overloaded = status == 429
                self.summary.throttled += overloaded
                raise _Outcome(
                    f"HTTP {status}: {message}",
                    parse_retry_after(response.headers.get("retry-after")),
                    cold=status == 503,
                    overloaded=overloaded,
                )
            raise _Refused(f"HTTP {status}: {message}", status)  # no retry as it is
        finally:
            await limit.release(ticket, overloaded=overloaded)

    def _counts_as_retry(self, failure: _Outcome) -> bool:
        """
        Tell whether a transient failure uses up one of the input's retries.

        Not while a scaled-to-zero endpoint wakes (503s until ``cold_start_timeout``), nor while an
        overloaded endpoint (429) keeps answering other inputs: that is backpressure, the input waits
        its turn.
        """
        now = time.monotonic()
        waking = failure.cold and self.settings.wake_scaled_to_zero and now < self.cold_deadline
        backpressure = failure.overloaded and now - self.last_success < self.settings.overload_timeout
        return not (waking or backpressure)

    def _backoff(self, failure: _Outcome, step: int) -> float:
        delay = self.settings.retry.delay(step, failure.retry_after)
        if failure.overloaded and failure.retry_after is None:
            delay *= random.random()  # spread a burst of 429s instead of returning it whole
        return delay

    def _record(self, result: ItemResult) -> None:
        summary = self.summary
        if result.ok:
            self.last_success = time.monotonic()
            summary.succeeded += 1
        else:
            summary.failed += 1
            summary.invalid_output += result.kind == INVALID_OUTPUT
            if len(summary.first_errors) < 5:
                summary.first_errors.append(result.to_json())
        server_error = not result.ok and str(result.error).startswith("HTTP 5")
        summary.ending_server_errors = summary.ending_server_errors + 1 if server_error else 0
        self.on_result(result)

    async def _report_progress(self) -> None:
        summary = self.summary
        while True:
            await asyncio.sleep(self.settings.progress_interval)
            done = summary.succeeded + summary.failed
            elapsed = time.monotonic() - self.started
            rate = done / elapsed if elapsed else 0.0
            eta = f", ETA {(self.total - done) / rate:.0f} s" if self.total and rate else ""
            log.info(
                "%d/%s done (%.1f/s%s), %d retries, %d errors, concurrency %d",
                done,
                self.total if self.total is not None else "?",
                rate,
                eta,
                summary.retries,
                summary.failed,
                self.limit.limit,
            )

    async def _follow_replicas(self, read: Callable[[], Awaitable[int | None]]) -> None:
        """Scale the limit with the endpoint's ready replicas, read every ``replica_poll_interval``."""
        known = None
        while True:
            try:
                count = await read()
            except Exception as exc:  # best effort: the batch goes on at the limit it has
                log.debug("Could not read the endpoint's replicas: %s", exc)
                count = None
            if count and known and count != known:
                log.info("The endpoint has %d replicas (was %d): concurrency follows", count, known)
                await self.limit.rescale(count / known)
            known = count or known
            await asyncio.sleep(self.settings.replica_poll_interval)


async def run_batch(
    *,
    client: httpx.AsyncClient,
    url: str,
    task: InferenceTask,
    items: Iterable[tuple[int, Any]],
    parameters: dict[str, Any] | None,
    on_result: Callable[[ItemResult], None],
    settings: BatchSettings | None = None,
    total: int | None = None,
    replicas: Callable[[], Awaitable[int | None]] | None = None,
) -> BatchSummary:
    """
    Send every ``(index, input)`` of ``items`` to the endpoint at ``url``; return the summary.

    :param client: the HTTP client (its auth is the endpoint's token; its pool is reused).
    :param url: the endpoint's URL, as the API gave it.
    :param task: how to build requests and parse answers.
    :param items: ``(index, input)`` pairs, already validated; read lazily (files stream).
    :param parameters: parameters shared by every request.
    :param on_result: called once per input, as results arrive (not in input order).
    :param settings: concurrency, timeouts and retries.
    :param total: the number of inputs, for progress and ETA, when known.
    :param replicas: reads the endpoint's ready replicas (``None`` when unknown); with it, the
        concurrency grows and shrinks with them, every ``replica_poll_interval`` seconds.
    """
    run = BatchRun(
        client=client,
        url=url,
        task=task,
        parameters=parameters,
        on_result=on_result,
        settings=settings or BatchSettings(),
        total=total,
    )
    return await run.run(items, replicas)
