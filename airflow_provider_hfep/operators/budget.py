"""The task that holds a window's endpoint to its caps: deferred to the triggerer beside the work."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_hfep.endpoints.arguments import check_choice, check_seconds
from airflow_provider_hfep.endpoints.costs import WindowCaps, opened_at
from airflow_provider_hfep.endpoints.errors import (
    BudgetExceededError,
    EndpointsError,
    InvalidEndpointArgumentError,
)
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.target import EndpointTarget
from airflow_provider_hfep.triggers.budget import CLOSE_ACTIONS, HuggingFaceEndpointBudgetTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


def seconds_of(field: str, value: float | timedelta | None) -> float | None:
    """Read a duration given as seconds or a ``timedelta``."""
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    check_seconds(field, seconds)
    return float(seconds)


class HuggingFaceEndpointBudgetOperator(EndpointTarget, BaseOperator):
    """
    Hold an endpoint to its caps: ``max_cost``, ``max_runtime``, ``stop_at``, whichever comes first closes it.

    Deferred to :class:`~airflow_provider_hfep.triggers.budget.HuggingFaceEndpointBudgetTrigger` for
    as long as the endpoint runs, beside the work: it holds no worker slot, and a triggerer restart
    keeps the spend (it is counted from the endpoint's replicas, not remembered). When a cap fires,
    the inference tasks of the window (which watch the same caps) stop sending and fail with
    :class:`~airflow_provider_hfep.endpoints.BudgetExceededError`, the trigger closes the endpoint a
    moment later, and this task fails naming the cap (its XCom keeps the record for the cost report).
    When the endpoint is closed otherwise (the window's close), it ends quietly.
    :func:`~airflow_provider_hfep.window.endpoint_window` adds it when a cap is given.

    :param endpoint_name: the endpoint. (templated)
    :param max_cost: USD the endpoint may cost from ``opened_by``'s resume on (price per replica-hour
        from the hardware listing, times the replicas that ran).
    :param max_runtime: seconds (or a ``timedelta``) the endpoint may run from then on.
    :param stop_at: a time of day, ``"HH:MM"`` in ``timezone``: the first such moment after the resume
        (or an ISO date and time).
    :param timezone: the IANA time zone of ``stop_at``. Default ``"UTC"``.
    :param opened_by: the task that resumed the endpoint (its result's ``updated_at`` starts the
        count); default: the endpoint's last state change, as read when this task starts.
    :param namespace: its namespace. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param close: ``pause`` (default) or ``scale_to_zero``: how a cap closes it.
    :param poke_interval: seconds between two looks at most (and exactly when a cap is due). Default 30.
    :return: the trigger's last event: ``{"status": "closed", "message"}`` (XCom).
    """

    def __init__(
        self,
        *,
        endpoint_name: str,
        max_cost: float | None = None,
        max_runtime: float | timedelta | None = None,
        stop_at: str | None = None,
        timezone: str = "UTC",
        opened_by: str | None = None,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        close: str = "pause",
        poke_interval: float = 30,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._set_target(endpoint_name, namespace, hf_conn_id)
        check_choice("close", close, CLOSE_ACTIONS)
        check_seconds("poke_interval", poke_interval)
        self.caps = WindowCaps(max_cost, seconds_of("max_runtime", max_runtime), stop_at, timezone)
        if not self.caps.capped:
            raise InvalidEndpointArgumentError(
                "max_cost", "no cap is given", "give max_cost, max_runtime or stop_at (or drop this task)"
            )
        self.opened_by = opened_by
        self.close = close
        self.poke_interval = poke_interval

    def execute(self, context: Context) -> dict[str, Any] | None:
        if getattr(context.get("dag_run"), "triggering_user_name", None) == "dag_test":
            # dag.test() runs one task at a time and a deferred task's trigger inline: a watch for the
            # whole window would hold the work up. The inference tasks still watch their caps.
            message = "dag.test() runs tasks one at a time: the caps are watched by the inference tasks only"
            self.log.warning("%s", message)
            return {"status": "not watched", "message": message}
        name, namespace = self._resolve(context)
        opened = context["ti"].xcom_pull(task_ids=self.opened_by) if self.opened_by else None
        if not opened:
            opened = self.hook.client.get(name, namespace=namespace).to_dict()
        since = opened_at(opened)
        budget = self.caps.resolve(since)
        self.log.info(
            "Watching what %s/%s costs from %s on: %s", namespace, name, opened["updated_at"], budget
        )
        self.defer(
            trigger=HuggingFaceEndpointBudgetTrigger(
                hf_conn_id=self.hf_conn_id,
                endpoint_name=name,
                namespace=namespace,
                since=since,
                budget=budget.to_json(),
                close=self.close,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired: quietly when the window closed the endpoint, failed when a cap did."""
        event = event or {}
        if event.get("status") == "cap":
            context["ti"].xcom_push(key="return_value", value=event)
            raise BudgetExceededError(
                f"Endpoint {event.get('endpoint_name')} closed ({self.close}): {event.get('message')}",
                event.get("cap"),
            )
        if event.get("status") != "closed":
            raise EndpointsError(f"The budget watch ended: {event.get('message')}")
        self.log.info("%s", event.get("message"))
        return event
