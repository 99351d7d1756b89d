"""Bring an endpoint's log (and its replicas' states) into the task log: what happened on the service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_hfep.endpoints.arguments import check_count
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.target import EndpointTarget

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class HuggingFaceEndpointLogsOperator(EndpointTarget, BaseOperator):
    """
    Read an endpoint's log lines and replicas into the task log, and return them.

    For a DAG that wants to see what the service did (after a failure, or as a record of the night):
    the searchable v3 logs where the endpoint has them, else the v2 text. The connection's token,
    anything that looks like a Hugging Face token, and the value of any variable named like a
    credential (``HF_TOKEN=...``, ``*_SECRET: ...``) are hidden before the lines are logged or returned.

    :param endpoint_name: the endpoint. (templated)
    :param namespace: its namespace. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param tail: the last lines to read. Default 100.
    :param level: only lines of this level (``error``, ``warning``, ``info``).
    :param search: only lines containing this text. (templated)
    :param since: only lines from this moment (RFC 3339). (templated)
    :param until: only lines up to this moment (RFC 3339). (templated)
    :param replica: only this replica's lines.
    :return: ``{"lines": [...], "replicas": [...]}``, strings.
    """

    template_fields: Sequence[str] = (*EndpointTarget.template_fields, "search", "since", "until")

    def __init__(
        self,
        *,
        endpoint_name: str,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        tail: int = 100,
        level: str | None = None,
        search: str | None = None,
        since: str | None = None,
        until: str | None = None,
        replica: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_count("tail", tail, 1)
        self._set_target(endpoint_name, namespace, hf_conn_id)
        self.tail = tail
        self.level = level
        self.search = search
        self.since = since
        self.until = until
        self.replica = replica

    def execute(self, context: Context) -> dict[str, list[str]]:
        name, namespace = self._resolve(context)
        client = self.hook.client
        lines = client.logs(
            name,
            namespace=namespace,
            tail=self.tail,
            replica=self.replica,
            level=self.level,
            search=self.search,
            since=self.since,
            until=self.until,
        )
        replicas = client.replicas(name, namespace=namespace)
        shown = [str(line) for line in lines]  # the client hid the token and anything like one
        states = [str(replica) for replica in replicas]
        self.log.info(
            "Endpoint %s/%s: %d log line(s), %d replica(s)", namespace, name, len(shown), len(states)
        )
        for state in states:
            self.log.info("Replica %s", state)
        for line in shown:
            self.log.info("%s", line)
        return {"lines": shown, "replicas": states}
