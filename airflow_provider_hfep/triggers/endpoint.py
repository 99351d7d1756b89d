"""The trigger every wait defers to: polls the API (and the health route) in the triggerer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_hfep.endpoints.models import InferenceEndpoint
from airflow_provider_hfep.endpoints.waiting import (
    DELETED,
    WAIT_TARGETS,
    Outcome,
    WatchResult,
    raise_for_result,
)
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook


class HuggingFaceEndpointStatusTrigger(BaseTrigger):
    """
    Wait in the triggerer until an endpoint reaches a state; yield exactly one event.

    Deliberately thin: the polling loop and the "is it there yet" check are the pure client's
    ``watch()``, the same code the non-deferrable waits run. Only ids and numbers cross the
    serialization boundary, never the token: the connection is resolved again, asynchronously, in
    ``run()``. ``end_time`` is an absolute epoch, so a triggerer restart keeps the deadline.

    The event is ``{"status", "endpoint_name", "namespace", "state", "message", "url"}`` with status
    ``success``, ``failed``, ``update_failed``, ``paused``, ``scaled_to_zero``, ``not_found``,
    ``timeout`` or ``error``.

    :param hf_conn_id: the Airflow connection id.
    :param endpoint_name: the endpoint to watch.
    :param namespace: its namespace (``None``: the connection's, or the token's user).
    :param target_status: the state to reach, or ``"deleted"``.
    :param poll_interval: seconds between two reads.
    :param end_time: absolute deadline, epoch seconds.
    :param check_health: for ``running``, also require a 200 from the health route.
    :param settle_until: epoch until which a ``running`` seen before any other state is the stale
        state from before an update (see ``EndpointsApi.watch``).
    :param max_consecutive_errors: transient read failures tolerated in a row.
    """

    def __init__(
        self,
        *,
        hf_conn_id: str,
        endpoint_name: str,
        namespace: str | None,
        end_time: float,
        target_status: str = "running",
        poll_interval: float = 30.0,
        check_health: bool = True,
        settle_until: float | None = None,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        if target_status not in WAIT_TARGETS:
            raise ValueError(
                f"target_status: {target_status!r} is not a state. Fix: use one of {', '.join(sorted(WAIT_TARGETS))}"
            )
        self.hf_conn_id = str(hf_conn_id)
        self.endpoint_name = str(endpoint_name)
        self.namespace = None if namespace is None else str(namespace)
        self.end_time = float(end_time)
        self.target_status = str(target_status)
        self.poll_interval = float(poll_interval)
        self.check_health = bool(check_health)
        self.settle_until = None if settle_until is None else float(settle_until)
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hf_conn_id": self.hf_conn_id,
                "endpoint_name": self.endpoint_name,
                "namespace": self.namespace,
                "end_time": self.end_time,
                "target_status": self.target_status,
                "poll_interval": self.poll_interval,
                "check_health": self.check_health,
                "settle_until": self.settle_until,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await HuggingFaceEndpointHook(
                self.hf_conn_id, namespace=self.namespace
            ).get_async_client()
        except Exception as exc:  # a broken connection must end the wait with a clear event, not a crash
            yield TriggerEvent(
                WatchResult(
                    Outcome.ERROR,
                    self.endpoint_name,
                    self.namespace,
                    None,
                    f"Connection {self.hf_conn_id!r}: {exc}",
                    None,
                ).to_event()
            )
            return
        try:
            result = await client.watch(
                self.endpoint_name,
                namespace=self.namespace,
                target=self.target_status,
                end_time=self.end_time,
                poll_interval=self.poll_interval,
                check_health=self.check_health,
                settle_until=self.settle_until,
                max_consecutive_errors=self.max_consecutive_errors,
            )
        finally:
            await client.aclose()
        self.log.info("%s", result.message)
        yield TriggerEvent(result.to_event())


def finish_wait(
    hook: HuggingFaceEndpointHook, event: dict[str, Any] | None, endpoint: InferenceEndpoint | None = None
) -> dict[str, Any]:
    """
    End a wait from its event, on the worker: raise the typed error, or return the endpoint.

    Shared by the sensor and the operators, whether the wait ran inline or in the triggerer. After a
    deferral it runs on a fresh operator instance with only the event, so it reads the endpoint afresh;
    an inline wait passes the ``endpoint`` its last look just read.
    """
    result = WatchResult.from_event(event)
    raise_for_result(result)
    if result.state == DELETED:
        return {"name": result.endpoint_name, "namespace": result.namespace, "status": DELETED}
    if endpoint is None:
        endpoint = hook.client.get(result.endpoint_name, namespace=result.namespace)
    return endpoint.to_dict()
