"""
Typed errors of the Inference Endpoints client.

Every error raised by this package derives from :class:`EndpointsError`. API errors carry what a
person needs to act on them: the HTTP status, the server's own message and the request id to quote
to Hugging Face support. None of them ever holds the token: messages are built from the method, the
URL path and the server's answer, never from request headers.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import httpx


class EndpointsError(Exception):
    """Base class of every error raised by the Inference Endpoints client."""


class InvalidEndpointArgumentError(EndpointsError, ValueError):
    """
    An argument was refused locally, before any request was sent.

    :param field: the argument at fault, as the caller named it (e.g. ``min_replica``).
    :param problem: what is wrong with the value.
    :param fix: what to do instead.
    """

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}: {problem}. Fix: {fix}")


class EndpointsApiError(EndpointsError):
    """
    The API answered with an HTTP error status.

    :param status_code: the HTTP status of the answer.
    :param server_message: the server's explanation (``X-Error-Message``, JSON ``error`` or
        ``errors[].message``, or the raw text), empty if it gave none.
    :param request_id: the id to quote to support (``X-Request-Id``, ``X-Amzn-Trace-Id``).
    :param method: the HTTP method of the request.
    :param path: the URL path of the request (no query string, no credentials).
    """

    #: what the user can do about it, when the status alone tells (added to the message)
    fix = ""

    def __init__(
        self,
        status_code: int,
        server_message: str,
        *,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        self.status_code = status_code
        self.server_message = server_message
        self.request_id = request_id
        self.method = method
        self.path = path
        #: how many times the request was repeated before this answer (set by the client)
        self.retries = 0
        where = f" for {method} {path}" if method else ""
        detail = f": {server_message}" if server_message else ""
        rid = f" (Request ID: {request_id})" if request_id else ""
        fix = f". Fix: {self.fix}" if self.fix else ""
        super().__init__(f"HTTP {status_code}{where}{detail}{rid}{fix}")


class MalformedAnswerError(EndpointsApiError):
    """
    The API answered, but not with what the contract promises: not JSON, or JSON of another shape.

    A proxy's HTML page, a truncated body, a missing or mistyped field: the message names the route,
    the status, what was wrong and the first :data:`BODY_EXCERPT` characters of the body.
    """

    @classmethod
    def of(cls, response: httpx.Response, problem: str) -> MalformedAnswerError:
        """Describe ``response`` (already read) as a malformed answer: ``problem`` says what is wrong."""
        try:
            excerpt = _cut(response.text, BODY_EXCERPT)
        except Exception:  # not read (a body refused while it was read): nothing to quote
            excerpt = ""
        return cls(
            response.status_code,
            f"unexpected answer ({problem}); body: {excerpt!r}",
            request_id=_request_id(response),
            method=response.request.method,
            path=response.request.url.path,
        )


class AnswerTooLargeError(EndpointsError):
    """
    An answer grew past the size the client accepts (``max_answer_bytes``): no real answer is that large.

    :param url: where it came from (path only in the message: no query string).
    :param limit: the limit it passed, in bytes.
    """

    def __init__(self, url: str, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"The answer from {urlsplit(url).path or '/'} is larger than {limit} bytes. Fix: if it is "
            "genuine, raise max_answer_bytes; otherwise something between you and the service is broken"
        )


class InsecureDestinationError(EndpointsError):
    """
    The token was about to be sent over plain http to another machine: refused, nothing was sent.

    Plain http is allowed to this machine (loopback), or everywhere with ``allow_insecure_http``.
    """


class RedirectRefusedError(EndpointsApiError):
    """
    The API answered with a redirect this client does not follow (its body, or the token, would go elsewhere).

    Only a GET to the same origin (scheme, host and port) is followed.
    """

    fix = "point the connection's API URL at the address the redirect names, if you trust it"


class ValidationFailedError(EndpointsApiError):
    """400/422: the server refused the request body or the operation in the current state."""

    fix = "change what the service's message names (a field of the request, or the endpoint's state)"


class AuthenticationError(EndpointsApiError):
    """401: the token is missing, wrong or expired."""

    fix = (
        "the token (the connection's password) is wrong, revoked or expired: create a fine-grained "
        "token allowed to manage Inference Endpoints at https://huggingface.co/settings/tokens"
    )


class PermissionDeniedError(EndpointsApiError):
    """403: the token is valid but may not act in this namespace."""

    fix = (
        "set namespace (the argument or the connection extra 'namespace') to your user or an "
        "organisation the token may act in, or use a token that has access to this one"
    )


class NotFoundError(EndpointsApiError):
    """404: no such endpoint (or namespace)."""

    fix = "check endpoint_name and namespace (names are lowercase; the namespace is the owner, user or organisation)"


class ConflictError(EndpointsApiError):
    """409: an endpoint with that name already exists."""


class RateLimitedError(EndpointsApiError):
    """429: too many requests, still refused after the allowed retries."""


class ServerError(EndpointsApiError):
    """5xx: the service failed, still failing after the allowed retries."""


class EndpointsTransportError(EndpointsError):
    """The request never got an HTTP answer (connection refused or reset), even after retries."""


class EndpointsTimeoutError(EndpointsTransportError, TimeoutError):
    """The request got no answer within the client's timeout, even after retries."""


class EndpointStateError(EndpointsError):
    """
    An endpoint is in a state that ends a wait without success.

    :param name: the endpoint's name.
    :param state: its state string (e.g. ``failed``).
    :param message: the status message the service gave, if any.
    """

    def __init__(self, name: str, state: str, message: str) -> None:
        self.name = name
        self.state = state
        self.message = message
        super().__init__(message)


class EndpointFailedError(EndpointStateError):
    """The endpoint failed to deploy (``failed``)."""


class EndpointUpdateFailedError(EndpointStateError):
    """The endpoint's last update failed to apply (``updateFailed``)."""


class EndpointPausedError(EndpointStateError):
    """The endpoint is paused and would never reach the awaited state by itself."""


class EndpointScaledToZeroError(EndpointStateError):
    """The endpoint is scaled to zero and would only start on a request or a resume."""


class EndpointWaitTimeoutError(EndpointsError, TimeoutError):
    """The endpoint did not reach the awaited state before the deadline."""


class BudgetExceededError(EndpointsError):
    """
    A window's cap fired (``max_cost``, ``max_runtime`` or ``stop_at``): the endpoint is closed and the work stopped.

    :param message: the cap, the spend and what was left undone.
    :param cap: the cap's record (``CapFired.to_json()``), when known.
    """

    def __init__(self, message: str, cap: dict[str, Any] | None = None) -> None:
        self.cap = cap
        super().__init__(message)


class CapacityError(EndpointsError):
    """
    The hardware an operation needs is not there for this namespace now: refused before asking.

    :param reason: what is missing, e.g. ``quota: 4 of 4 nvidia-a10g in aws/us-east-1 in use``.
    :param fix: what to do instead.
    """

    def __init__(self, reason: str, fix: str) -> None:
        self.reason = reason
        self.fix = fix
        super().__init__(f"{reason}. Fix: {fix}")


#: characters of a server's text copied into an error (and so into logs and XCom)
SERVER_TEXT_MAX = 500
#: characters of a malformed body quoted in its error
BODY_EXCERPT = 200


def _cut(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, saying so: a server's text is copied, never unbounded."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _request_id(response: httpx.Response) -> str | None:
    return (
        response.headers.get("x-request-id")
        or response.headers.get("x-amzn-trace-id")
        or response.headers.get("x-amz-cf-id")
    )


_STATUS_CLASSES: dict[int, type[EndpointsApiError]] = {
    400: ValidationFailedError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationFailedError,
    429: RateLimitedError,
}


def server_message(response: httpx.Response) -> str:
    """
    Extract the server's explanation from an error answer, the way huggingface_hub does, cut to a bound.

    Order: the ``X-Error-Message`` header, then JSON ``error`` (a string or a list),
    ``error_description``, ``errors[].message``; else the raw text unless it is an HTML page. At most
    :data:`SERVER_TEXT_MAX` characters: the text goes into errors, logs and XCom.
    """
    return _cut(_explanation(response), SERVER_TEXT_MAX)


def _explanation(response: httpx.Response) -> str:
    header = response.headers.get("x-error-message")
    if header:
        return header
    text = response.text
    try:
        body = json.loads(text) if text else None
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, str) and error:
            return error
        if isinstance(error, list) and error:
            return "; ".join(str(item) for item in error)
        if isinstance(body.get("error_description"), str):
            return body["error_description"]
        errors = body.get("errors")
        if isinstance(errors, list):
            messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
            if any(messages):
                return "; ".join(m for m in messages if m)
    if text and not text.lstrip().lower().startswith(("<!doctype", "<html")):
        return text.strip()
    return ""


def error_from_response(response: httpx.Response) -> EndpointsApiError:
    """Build the typed error that matches an HTTP error answer."""
    status = response.status_code
    cls = _STATUS_CLASSES.get(status, ServerError if status >= 500 else EndpointsApiError)
    return cls(
        status,
        server_message(response),
        request_id=_request_id(response),
        method=response.request.method,
        path=response.request.url.path,
    )
