"""Wait for an endpoint's state without holding a worker slot."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowSensorTimeout

from airflow_provider_hfep.endpoints.waiting import WAIT_TARGETS, Outcome, WatchResult
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.links.endpoint import HuggingFaceEndpointLink
from airflow_provider_hfep.operators.target import EndpointTarget
from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger, finish_wait

if TYPE_CHECKING:
    from airflow.sdk import Context


class HuggingFaceEndpointSensor(EndpointTarget, BaseSensorOperator):
    """
    Wait until an endpoint reaches a state (by default: running, with its health route answering 200).

    Deferrable by default: it looks once on the worker, then waits in the triggerer, holding no worker
    slot. With ``deferrable=False`` it works in ``poke`` and ``reschedule`` modes. It fails at once,
    with the service's message, when the endpoint fails (``failed``, ``updateFailed``), is deleted, or
    when waiting for ``running`` on a ``paused`` or ``scaledToZero`` endpoint that nothing would start
    ("resume it first"). A timeout is an ``AirflowSensorTimeout`` (not retried).

    :param endpoint_name: the endpoint to wait for. (templated)
    :param namespace: its namespace; default the connection's, or the token's user. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param target_status: the state to reach (``running``, ``paused``, ``scaledToZero``, ... or ``deleted``).
    :param check_health: for ``running``, also require a 200 from the endpoint's health route.
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``, else True.
    :param poke_interval: seconds between two looks (also the trigger's poll interval). Default 30.
    :return: the endpoint as a JSON-safe dict (XCom).
    """

    template_fields: Sequence[str] = ("endpoint_name", "namespace", "hf_conn_id")
    operator_extra_links = (HuggingFaceEndpointLink(),)
    ui_color = "#ffd21e"

    def __init__(
        self,
        *,
        endpoint_name: str,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        target_status: str = "running",
        check_health: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=True),
        poke_interval: float = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        if target_status not in WAIT_TARGETS:
            raise ValueError(
                f"target_status: {target_status!r} is not a state. Fix: use one of {', '.join(sorted(WAIT_TARGETS))}"
            )
        self._set_target(endpoint_name, namespace, hf_conn_id)
        self.target_status = target_status
        self.check_health = check_health
        self.deferrable = deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        name, namespace = self._resolve(context)
        # A deadline already passed makes watch() take exactly one look.
        result = self.hook.client.watch(
            name,
            namespace=namespace,
            target=self.target_status,
            end_time=time.time(),
            poll_interval=self.poke_interval,
            check_health=self.check_health,
        )
        if result.status is Outcome.TIMEOUT:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(
            is_done=True, xcom_value=finish_wait(self.hook, result.to_event(), result.endpoint)
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=HuggingFaceEndpointStatusTrigger(
                hf_conn_id=self.hf_conn_id,
                endpoint_name=self.endpoint_name,
                namespace=self.hook.namespace,
                end_time=time.time() + self.timeout,
                target_status=self.target_status,
                poll_interval=self.poke_interval,
                check_health=self.check_health,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Runs on a fresh instance after the trigger fired: everything comes from the event."""
        if WatchResult.from_event(event).status is Outcome.TIMEOUT:
            raise AirflowSensorTimeout(event["message"])
        return finish_wait(self.hook, event)
