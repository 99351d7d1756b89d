"""
HTTP plumbing shared by the management client and the inference runner (pure: no Airflow import).

What lives here is what both sides need to talk to Hugging Face safely: where the token may be sent
(:func:`token_may_travel`, :func:`check_base_url`, :func:`is_loopback`), how it is sent
(:class:`BearerAuth`, which refuses any other destination), how much of an answer is read and for how
long (:func:`bounded`), how TLS is verified (:func:`tls_verification`), and the async connection pool
that a triggerer's many waits share (:func:`shared_async_transport`, :func:`shared_async_client`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import time
import weakref
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import httpx

from airflow_provider_hfep import __version__
from airflow_provider_hfep.endpoints.errors import (
    AnswerTooLargeError,
    InsecureDestinationError,
    InvalidEndpointArgumentError,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence

USER_AGENT = f"airflow-provider-hfep/{__version__}; httpx/{httpx.__version__}"
#: connections of the pool shared by the async clients of one event loop (a triggerer), in shards of
#: SHARED_POOL_SHARD: httpcore scans each of a pool's connections (and, for each, the others) twice a
#: request, so a poll through one pool of 10 costs a quarter more CPU than through a pool of 4. Twelve
#: carry ~80 reads a second at 150 ms each, the 30 s polls of some 2,400 waits; past that, polls queue
#: at the gate and stretch
SHARED_POOL_CONNECTIONS = 12
SHARED_POOL_SHARD = 4
#: bytes of one answer read at most, by default: far above any real one (a page of endpoints is tens
#: of KB, 10,000 log lines a few MB, 32 embeddings about 1 MB), far below what would hurt a worker
DEFAULT_MAX_ANSWER_BYTES = 64 * 1024 * 1024


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where plain http cannot leak anything)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def token_may_travel(url: str | httpx.URL, allow_insecure_http: bool) -> bool:
    """
    Whether the token may be sent to ``url``: https anywhere, plain http only to this machine.

    Judged on the parsed URL (``HTTP://`` is http too), for every destination alike: the API, the
    Hub, the catalog, an endpoint's health route and its data plane.
    """
    scheme = urlsplit(str(url)).scheme.lower()
    if scheme == "https":
        return True
    return scheme == "http" and (allow_insecure_http or is_loopback(str(url)))


def check_token_destination(url: str | httpx.URL, allow_insecure_http: bool) -> None:
    """Refuse (:class:`InsecureDestinationError`) a destination the token may not travel to."""
    if not token_may_travel(url, allow_insecure_http):
        parts = urlsplit(str(url))
        raise InsecureDestinationError(
            f"Refused to send the token to {parts.scheme}://{parts.netloc}{parts.path}: plain http to "
            "another machine, where anyone on the path reads it. Fix: use https, or set "
            "allow_insecure_http=True (connection extra) if the network is yours"
        )


def check_base_url(field_name: str, url: str, allow_insecure_http: bool) -> str:
    """
    Normalise a base URL and refuse plain http to another machine unless explicitly allowed.

    The token travels in every request: over plain http to a remote host anyone on the path reads it.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidEndpointArgumentError(field_name, "is empty", "set an https:// URL")
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidEndpointArgumentError(
            field_name, f"scheme {scheme!r} is not http(s)", "use an https:// URL"
        )
    if not token_may_travel(url, allow_insecure_http):
        raise InvalidEndpointArgumentError(
            field_name,
            f"{url} is plain http to another machine, which would expose the token",
            "use https://, or set allow_insecure_http=True if you really mean it",
        )
    return url


class BearerAuth(httpx.Auth):
    """
    Adds the token to each request; keeps it out of ``repr`` and of the client's default headers.

    The last line of defence: whatever URL a request was built for (an answer's ``status.url``, a
    redirect), the token is added only where :func:`token_may_travel` allows, else the request is
    refused before anything is sent.

    :param token: the Hugging Face token.
    :param allow_insecure_http: allow plain http to another machine too.
    """

    def __init__(self, token: str, allow_insecure_http: bool = False) -> None:
        self._token = token
        self.allow_insecure_http = allow_insecure_http

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        check_token_destination(request.url, self.allow_insecure_http)
        request.headers["authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


class _BoundedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An answer's body that refuses to grow past a size or to go on arriving past a deadline."""

    def __init__(self, inner: Any, url: str, limit: int, deadline: float) -> None:
        self._inner, self._url, self._limit, self._deadline = inner, url, limit, deadline
        self._read = 0

    def _count(self, chunk: bytes) -> bytes:
        self._read += len(chunk)
        if self._read > self._limit:
            raise AnswerTooLargeError(self._url, self._limit)
        if time.monotonic() > self._deadline:
            # a timeout like any other: repeated where a timeout is, then reported as one
            raise httpx.ReadTimeout("the answer was still arriving at the request's deadline")
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            yield self._count(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield self._count(chunk)

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


def bounded(
    response: httpx.Response, limit: int, deadline: float, request: httpx.Request | None = None
) -> httpx.Response:
    """
    Make reading ``response``'s body stop past ``limit`` bytes or past ``deadline`` (``time.monotonic()``).

    httpx's timeouts are per read: a body trickling a byte at a time would never time out, and a
    body with no end would fill the memory. Apply before reading a response sent with ``stream=True``
    (or, in a transport, before the client has set its ``request``: pass it).
    """
    url = str((request or response.request).url)
    response.stream = _BoundedStream(response.stream, url, limit, deadline)
    return response


def tls_verification(verify: bool | str) -> bool | ssl.SSLContext:
    """Httpx's form of a TLS setting: ``True``/``False``, or a CA bundle path made into an SSL context."""
    if not isinstance(verify, str):
        return bool(verify)
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    if os.path.isfile(verify):
        return ssl.create_default_context(cafile=verify)
    raise InvalidEndpointArgumentError(
        "verify",
        f"{verify!r} is not a CA bundle file or directory",
        "use true, false, or the path of a PEM CA bundle",
    )


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that gives its slot back when it is closed (read to the end, or abandoned)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


class SharedPool(httpx.AsyncBaseTransport):
    """
    Connection pools that outlive the clients using them: closing a client leaves them open.

    Requests beyond the connections wait here, at the gate, not in httpcore's queue: httpcore walks its
    whole queue each time a request comes or goes, so a thousand waits polling at once through a few
    connections cost it a thousand steps a request; at the gate a waiter costs nothing until its turn.
    Past the gate a request goes to the least busy shard (the first of equals: quiet polls keep to one
    small pool, whose scans are short). A request holds its slot until its answer is closed.

    :param shards: the pools, each of ``per_shard`` connections.
    :param per_shard: connections of each pool: requests each lets through at once.
    """

    def __init__(self, shards: Sequence[httpx.AsyncBaseTransport], per_shard: int) -> None:
        self._shards = list(shards)
        self._busy = [0] * len(self._shards)
        self.connections = per_shard * len(self._shards)
        self._gate = asyncio.Semaphore(self.connections)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._gate.acquire()
        shard = min(range(len(self._shards)), key=self._busy.__getitem__)
        self._busy[shard] += 1

        def release() -> None:
            self._busy[shard] -= 1
            self._gate.release()

        try:
            response = await self._shards[shard].handle_async_request(request)
        except BaseException:
            release()
            raise
        response.stream = _ReleasingStream(cast("httpx.AsyncByteStream", response.stream), release)
        return response

    async def aclose(self) -> None:
        """Leave the pools to the other clients of this event loop; they go with the loop."""


_SHARED_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedPool]] = (
    weakref.WeakKeyDictionary()
)


def shared_async_transport(verify: bool | str = True) -> httpx.AsyncBaseTransport:
    """
    Return the connection pool shared by every async client of the running event loop (and TLS setting).

    A triggerer runs hundreds of triggers in one loop; each opening its own pool would hold one TCP
    (and TLS) connection per trigger. Credentials stay on each client, never in the pool.
    """
    pools = _SHARED_POOLS.setdefault(asyncio.get_running_loop(), {})
    key = repr(verify)
    if key not in pools:
        limits = httpx.Limits(max_connections=SHARED_POOL_SHARD, max_keepalive_connections=SHARED_POOL_SHARD)
        tls = tls_verification(verify)
        shards = [
            httpx.AsyncHTTPTransport(verify=tls, limits=limits)
            for _ in range(-(-SHARED_POOL_CONNECTIONS // SHARED_POOL_SHARD))
        ]
        pools[key] = SharedPool(shards, SHARED_POOL_SHARD)
    return pools[key]


_SHARED_CLIENTS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakValueDictionary[tuple[int, str], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def shared_async_client(options: dict[str, Any], verify: bool | str, identity: str) -> httpx.AsyncClient:
    """
    Return the ``httpx.AsyncClient`` of the running event loop for one token and its settings.

    Each of a triggerer's waits holding its own client (headers, cookie jar, auth, URL models) costs
    it several KiB; the waits of one connection share one instead, over :func:`shared_async_transport`.
    The client lives while a wait uses it (weakly held here) and is never closed by one of them: its
    pool is the loop's.

    :param options: the ``httpx.AsyncClient`` arguments (the token's auth included).
    :param verify: the TLS setting, which picks the shared pool.
    :param identity: a digest of the token and the settings (never the token itself): clients with
        another token or other settings get a client of their own.
    """
    pool = shared_async_transport(verify)
    clients = _SHARED_CLIENTS.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
    key = (id(pool), identity)
    client = clients.get(key)
    if client is None:
        client = clients[key] = httpx.AsyncClient(transport=pool, **options)
    return client
