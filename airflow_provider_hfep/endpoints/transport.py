"""
HTTP plumbing shared by the management client and the inference runner (pure: no Airflow import).

What lives here is what both sides need to talk to Hugging Face safely: where the token may be sent
(:func:`check_base_url`, :func:`is_loopback`), how it is sent (:class:`BearerAuth`), how TLS is
verified (:func:`tls_verification`), and the async connection pool that a triggerer's many waits
share (:func:`shared_async_transport`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import weakref
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from airflow_provider_hfep import __version__
from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError

if TYPE_CHECKING:
    from collections.abc import Generator

USER_AGENT = f"airflow-provider-hfep/{__version__}; httpx/{httpx.__version__}"
#: connections of the pool shared by the async clients of one event loop (a triggerer)
SHARED_POOL_CONNECTIONS = 10


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (where plain http cannot leak anything)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InvalidEndpointArgumentError(
            field_name, f"scheme {scheme!r} is not http(s)", "use an https:// URL"
        )
    if scheme == "http" and not allow_insecure_http and not is_loopback(url):
        raise InvalidEndpointArgumentError(
            field_name,
            f"{url} is plain http to another machine, which would expose the token",
            "use https://, or set allow_insecure_http=True if you really mean it",
        )
    return url


class BearerAuth(httpx.Auth):
    """Adds the token to each request; keeps it out of ``repr`` and of the client's default headers."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


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


class _SharedAsyncTransport(httpx.AsyncBaseTransport):
    """A connection pool that outlives the clients using it: closing a client leaves it open."""

    def __init__(self, inner: httpx.AsyncHTTPTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Leave the pool to the other clients of this event loop; it goes with the loop."""


_SHARED_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedAsyncTransport]] = (
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
        limits = httpx.Limits(
            max_connections=SHARED_POOL_CONNECTIONS, max_keepalive_connections=SHARED_POOL_CONNECTIONS
        )
        pools[key] = _SharedAsyncTransport(
            httpx.AsyncHTTPTransport(verify=tls_verification(verify), limits=limits)
        )
    return pools[key]
