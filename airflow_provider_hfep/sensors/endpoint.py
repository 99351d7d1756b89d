"""Wait for an endpoint's state without holding a worker slot."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.triggers.base import StartTriggerArgs

from airflow_provider_hfep._compat import AIRFLOW_V_3_3_PLUS, AirflowSensorTimeout
from airflow_provider_hfep.endpoints.arguments import check_choice
from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.waiting import WAIT_TARGETS, Outcome, WatchResult
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.links.endpoint import HuggingFaceEndpointLink
from airflow_provider_hfep.target import EndpointTarget, final_verdicts, race_safe_retries
from airflow_provider_hfep.triggers.endpoint import HuggingFaceEndpointStatusTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class HuggingFaceEndpointSensor(EndpointTarget, BaseSensorOperator):
    """
    Wait until an endpoint reaches a state (by default: running, with its health route answering 200).

    Deferrable by default, whatever ``[operators] default_deferrable`` says (waiting without a worker
    slot is what this sensor is for): it looks once on the worker, then waits in the triggerer. With
    ``start_from_trigger=True`` it skips the worker too and starts in the triggerer, so the wait takes
    no worker slot at all (a worker runs only the few lines that end it). With ``deferrable=False`` it
    works in ``poke`` and ``reschedule`` modes.

    It fails at once, with the service's message, when the endpoint fails (``failed``,
    ``updateFailed``), is deleted, or when waiting for ``running`` on a ``paused`` or ``scaledToZero``
    endpoint that nothing would start ("resume it first"). A timeout is an ``AirflowSensorTimeout``
    (not retried). Deferrable and without ``retries`` of its own (or default_args'), it gets 2
    retries 5 s apart: Airflow can fail a deferred task whose trigger fires within seconds (a stale
    executor event; apache/airflow#66374, #71580, #72716), and a retry looks once and is done.

    :param endpoint_name: the endpoint to wait for. (templated)
    :param namespace: its namespace; default the connection's, or the token's user. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param target_status: the state to reach (``running``, ``paused``, ``scaledToZero``, ... or ``deleted``).
    :param check_health: for ``running``, also require a 200 from the endpoint's health route.
    :param deferrable: wait in the triggerer. Default True.
    :param start_from_trigger: start in the triggerer, not on a worker (Airflow 3.3 and later; on 3.0
        to 3.2 the sensor starts on a worker, with a warning). Default False. The endpoint's extra link
        is then recorded when the wait ends; templated ``endpoint_name``, ``namespace`` and
        ``hf_conn_id`` are rendered in the triggerer. Not for mapped sensors.
    :param poke_interval: seconds between two looks (also the trigger's poll interval). Default 30.
    :return: the endpoint as a JSON-safe dict (XCom).
    """

    # Read by the scheduler when start_from_trigger is on: it defers the task to this trigger directly.
    start_trigger_args = StartTriggerArgs(
        trigger_cls=f"{HuggingFaceEndpointStatusTrigger.__module__}.{HuggingFaceEndpointStatusTrigger.__qualname__}",
        trigger_kwargs=None,
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = False

    def __init__(
        self,
        *,
        endpoint_name: str,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        target_status: str = "running",
        check_health: bool = True,
        deferrable: bool = True,
        start_from_trigger: bool = False,
        poke_interval: float = 30,
        **kwargs: Any,
    ) -> None:
        retries_for_airflow_only = race_safe_retries(kwargs, deferrable)
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.retries_for_airflow_only = retries_for_airflow_only
        check_choice("target_status", target_status, sorted(WAIT_TARGETS))
        self._set_target(endpoint_name, namespace, hf_conn_id)
        self.target_status = target_status
        self.check_health = check_health
        self.deferrable = deferrable
        if start_from_trigger and not deferrable:
            raise InvalidEndpointArgumentError(
                "start_from_trigger",
                "needs a deferrable sensor",
                "drop deferrable=False, or start_from_trigger",
            )
        if start_from_trigger and not AIRFLOW_V_3_3_PLUS:
            # 3.0 to 3.2 ship the feature switched off in the scheduler (and could not render templated
            # names there): the sensor starts on a worker, looks once and defers, as it does by default.
            warnings.warn(
                f"{self.task_id}: start_from_trigger needs Airflow 3.3: this sensor starts on a worker",
                UserWarning,
                stacklevel=2,
            )
            start_from_trigger = False
        self.start_from_trigger = start_from_trigger
        if start_from_trigger:
            self.start_trigger_args = dataclasses.replace(
                self.start_trigger_args,
                trigger_kwargs=self._trigger(end_time=None).serialize()[1],
                # The trigger's deadline: Airflow keeps it as an absolute time, so restarts keep it.
                timeout=timedelta(seconds=self.timeout),
            )

    def _trigger(
        self, end_time: float | None, namespace: str | None = None
    ) -> HuggingFaceEndpointStatusTrigger:
        return HuggingFaceEndpointStatusTrigger(
            hf_conn_id=self.hf_conn_id,
            endpoint_name=self.endpoint_name,
            namespace=namespace if namespace is not None else self.namespace,
            end_time=end_time,
            target_status=self.target_status,
            poll_interval=self.poke_interval,
            check_health=self.check_health,
        )

    def _look(self, name: str, namespace: str) -> WatchResult:
        """Take exactly one look (a deadline already passed); ``timeout`` means not there yet."""
        return self.hook.client.watch(
            name,
            namespace=namespace,
            target=self.target_status,
            end_time=0.0,  # a deadline long passed: exactly one look
            poll_interval=self.poke_interval,
            check_health=self.check_health,
        )

    def poke(self, context: Context) -> PokeReturnValue:
        result = self._look(*self._resolve(context))
        if result.status is Outcome.TIMEOUT:
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self.finish_wait(result.to_event(), result.endpoint))

    @final_verdicts
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as timeout:  # poke and reschedule: Airflow's loop timed out
                # Pokes may have run in other processes (reschedule): one more look tells where it is.
                name, namespace = self._resolve(context)
                try:
                    last = self._look(name, namespace)
                except Exception:  # best effort: the timeout is the error
                    last = WatchResult(Outcome.TIMEOUT, name, namespace, None, "", None)
                waited = dataclasses.replace(
                    last, status=Outcome.TIMEOUT, message=f"{timeout}. {last.message}".rstrip(". ")
                )
                raise AirflowSensorTimeout(self.explain(waited).message) from timeout
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=self._trigger(
                end_time=self.hook.client.api_time + self.timeout, namespace=self.hook.namespace
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    @final_verdicts
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired, on a fresh instance: everything comes from the event."""
        result = WatchResult.from_event(event)
        if result.status is Outcome.TIMEOUT:
            raise AirflowSensorTimeout(self.explain(result).message)
        if self.start_from_trigger and result.namespace:  # no worker ran before: record the link now
            HuggingFaceEndpointLink.persist(context, result.namespace, result.endpoint_name)
        return self.finish_wait(event)
