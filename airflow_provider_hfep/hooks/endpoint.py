"""The Airflow side of the connection: from an ``hf_inference_endpoints`` connection to API clients."""

from __future__ import annotations

from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_hfep._compat import (
    AIRFLOW_V_3_2_PLUS,
    AirflowNotFoundException,
    BaseHook,
    get_connection_async,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow.sdk import Connection

    from airflow_provider_hfep.endpoints.client import AsyncEndpointsClient, EndpointsClient


def _verify_setting(value: Any) -> bool | str:
    """Read the ``verify`` extra: a boolean, or the path of a CA bundle (e.g. a company's TLS proxy)."""
    from airflow_provider_hfep.endpoints.arguments import as_bool, is_boolean_word

    if isinstance(value, str) and not is_boolean_word(value):
        return value.strip()
    return as_bool("connection extra 'verify'", value)


class HuggingFaceEndpointHook(BaseHook):
    """
    Talk to the Hugging Face Inference Endpoints API with the token of an Airflow connection.

    Nothing is read in ``__init__``: the connection is fetched on first use (so the hook can be built
    at DAG parse time or in a trigger), then the sync client is cached for the hook's life and the
    namespace is resolved at most once.

    Connection fields: **Token** (the password; the only place the token lives), **API URL** (the
    host, default ``https://api.endpoints.huggingface.cloud``), and extras ``namespace``, ``hub_url``,
    ``catalog_url``, ``timeout``, ``max_retries``, ``verify`` and ``allow_insecure_http``.

    :param hf_conn_id: the Airflow connection id.
    :param namespace: act in this namespace instead of the connection's (or the token user's).
    :param timeout: seconds per HTTP request, overriding the connection's ``timeout`` extra.
    """

    conn_name_attr = "hf_conn_id"
    default_conn_name = "hf_inference_endpoints_default"
    conn_type = "hf_inference_endpoints"
    hook_name = "Hugging Face Inference Endpoints"

    def __init__(
        self,
        hf_conn_id: str = default_conn_name,
        *,
        namespace: str | None = None,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.hf_conn_id = hf_conn_id
        self._namespace = namespace
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hf_conn_id={self.hf_conn_id!r})"

    def _client_settings(self, conn: Connection, extras: dict[str, Any]) -> dict[str, Any]:
        """Client arguments from a connection: shared by the sync and the async client."""
        from airflow_provider_hfep.endpoints.arguments import as_bool
        from airflow_provider_hfep.endpoints.client import (
            DEFAULT_API_URL,
            DEFAULT_CATALOG_URL,
            DEFAULT_HUB_URL,
            DEFAULT_TIMEOUT,
        )
        from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
        from airflow_provider_hfep.endpoints.retry import RetryPolicy

        if not conn.password:
            raise InvalidEndpointArgumentError(
                "token",
                f"connection {self.hf_conn_id!r} has no token",
                "put your Hugging Face token in its Token (password) field",
            )
        api_url = conn.host or DEFAULT_API_URL
        if "://" not in api_url:
            api_url = f"https://{api_url}"
        if conn.port and urlsplit(api_url).port is None:  # the URI form of a connection splits the port off
            api_url = urlsplit(api_url)._replace(netloc=f"{urlsplit(api_url).netloc}:{conn.port}").geturl()
        timeout = self._timeout if self._timeout is not None else extras.get("timeout") or DEFAULT_TIMEOUT
        try:
            timeout = float(timeout)
        except (TypeError, ValueError):
            raise InvalidEndpointArgumentError(
                "connection extra 'timeout'", f"{timeout!r} is not a number", "use seconds, e.g. 30"
            ) from None
        retries = extras.get("max_retries")
        try:
            retry = None if retries in (None, "") else RetryPolicy(max_retries=int(retries))
        except (TypeError, ValueError):
            raise InvalidEndpointArgumentError(
                "connection extra 'max_retries'", f"{retries!r} is not a count", "use an integer >= 0, e.g. 4"
            ) from None
        return {
            "token": conn.password,
            "retry": retry,
            "api_url": api_url,
            "hub_url": extras.get("hub_url") or DEFAULT_HUB_URL,
            "catalog_url": extras.get("catalog_url") or DEFAULT_CATALOG_URL,
            "namespace": self._namespace or extras.get("namespace") or None,
            "timeout": timeout,
            "verify": _verify_setting(extras.get("verify", True)),
            "allow_insecure_http": as_bool(
                "connection extra 'allow_insecure_http'", extras.get("allow_insecure_http", False)
            ),
        }

    @contextmanager
    def _explain_missing_connection(self) -> Iterator[None]:
        try:
            yield
        except AirflowNotFoundException:
            raise AirflowNotFoundException(
                f"hf_conn_id: no connection {self.hf_conn_id!r} is defined. Fix: add it with type "
                f"'{self.conn_type}' (Admin > Connections, `airflow connections add`, or the environment "
                f"variable AIRFLOW_CONN_{self.hf_conn_id.upper()}), or set hf_conn_id to an existing one"
            ) from None

    @cached_property
    def client(self) -> EndpointsClient:
        """The blocking client, built on first use from the connection and kept (one connection pool)."""
        from airflow_provider_hfep.endpoints.client import EndpointsClient

        with self._explain_missing_connection():
            conn = self.get_connection(self.hf_conn_id)
        return EndpointsClient(**self._client_settings(conn, conn.extra_dejson))

    def get_conn(self) -> EndpointsClient:
        """Return the blocking client (Airflow's conventional accessor)."""
        return self.client

    async def get_async_client(self) -> AsyncEndpointsClient:
        """
        Build a new async client from the connection, fetched without blocking the event loop.

        For triggers: the caller owns it and closes it (``async with``) when done. Clients of one event
        loop share a connection pool, and those of one connection an HTTP client, so a triggerer's many
        triggers do not each hold a connection or a client.
        """
        from airflow_provider_hfep.endpoints.client import AsyncEndpointsClient

        with self._explain_missing_connection():
            conn, extras = await get_connection_async(self, self.hf_conn_id)
        return AsyncEndpointsClient(**self._client_settings(conn, extras), shared=True)

    if not AIRFLOW_V_3_2_PLUS:
        # Airflow 3.0 and 3.1 build the connection form from these two; 3.2 reads the provider info's
        # conn-fields and ui-field-behaviour instead (and warns about these), so they exist only here.
        # Both are derived from the provider info: one description of the form for every version.

        @classmethod
        def get_connection_form_widgets(cls) -> dict[str, Any]:
            """Describe the extra fields of the connection form (Airflow 3.0 and 3.1)."""
            # Only the field classes: the API server turns them into the React form's JSON schema.
            from wtforms import BooleanField, IntegerField, StringField

            from airflow_provider_hfep.get_provider_info import connection_type

            classes = {"boolean": BooleanField, "integer": IntegerField}
            widgets: dict[str, Any] = {}
            for name, field in connection_type()["conn-fields"].items():
                # strings, and numbers such as the timeout: a text field (there is no float field)
                field_class = classes.get(field["schema"]["type"][0], StringField)
                widgets[name] = field_class(
                    field["label"], description=field["description"], default=field["schema"].get("default")
                )
            return widgets

        @classmethod
        def get_ui_field_behaviour(cls) -> dict[str, Any]:
            """Hide, relabel and explain the standard fields (Airflow 3.0 and 3.1)."""
            from airflow_provider_hfep.get_provider_info import connection_type

            behaviour = connection_type()["ui-field-behaviour"]
            return {
                "hidden_fields": behaviour["hidden-fields"],
                "relabeling": behaviour["relabeling"],
                "placeholders": behaviour["placeholders"],
            }

    @property
    def namespace(self) -> str:
        """The namespace calls act in (asked from whoami at most once when not configured)."""
        return self.client.resolve_namespace()

    def test_connection(self) -> tuple[bool, str]:
        """Check the token against the API with one cheap authenticated read (the endpoint listing)."""
        try:
            namespace = self.client.resolve_namespace()
            count = len(self.client.list_endpoints(namespace))
        except Exception as exc:  # the UI shows this message; every failure must reach it
            return False, str(exc)
        return True, f"Connected to {self.client.api_url} as namespace {namespace!r}: {count} endpoint(s)"
