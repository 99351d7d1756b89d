"""The trigger every wait defers to: polls the API (and the health route) in the triggerer."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_hfep.endpoints.arguments import check_choice
from airflow_provider_hfep.endpoints.waiting import WAIT_TARGETS, Outcome, WatchResult
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: What a task killed by a user leaves its endpoint in: the names are the clients' methods.
ON_KILL_ACTIONS = ("pause", "scale_to_zero", "none")
_STOPPED = {"pause": "paused", "scale_to_zero": "scaled to zero"}
#: ``on_kill`` must finish within the triggerer's ``[triggerer] on_kill_timeout`` (30 s by default).
ON_KILL_SECONDS = 25.0


class HuggingFaceEndpointStatusTrigger(BaseTrigger):
    """
    Wait in the triggerer until an endpoint reaches a state; yield exactly one event.

    Deliberately thin: the polling loop and the "is it there yet" check are the pure client's
    ``watch()``, the same code the non-deferrable waits run. Only ids and numbers cross the
    serialization boundary, never the token: the connection is resolved again, asynchronously, in
    ``run()``. ``end_time`` is an absolute epoch on the API's clock, so a triggerer restart keeps the
    deadline and a skewed triggerer clock does not move it. Whatever the API answers (malformed,
    unknown states), ``run()`` yields exactly one event and never raises.

    The event is ``{"status", "endpoint_name", "namespace", "state", "message", "url"}`` with status
    ``success``, ``failed``, ``update_failed``, ``paused``, ``scaled_to_zero``, ``stuck_pending``,
    ``not_found``, ``timeout`` or ``error``.

    When a user kills the waiting task (marks it failed or success, or clears it), Airflow 3.3 and later
    call :meth:`on_kill`, which applies ``on_kill_action`` to the endpoint: a deployment the task
    started does not go on billing. A triggerer restart or hand-over does not call it, nor does a
    timeout: the wait just goes on elsewhere, or ends with its event.

    :param hf_conn_id: the Airflow connection id. (templated with ``start_from_trigger``, 3.3+)
    :param endpoint_name: the endpoint to watch. (templated with ``start_from_trigger``, 3.3+)
    :param namespace: its namespace (``None``: the connection's, or the token's user). (templated with
        ``start_from_trigger``, 3.3+)
    :param end_time: absolute deadline, epoch seconds on the API's clock (``client.api_time``, read
        from its answers' ``Date``: a skew between the worker's and the triggerer's clocks does not
        move it); ``None`` waits until Airflow's own deferral timeout ends the task (how a sensor
        started in the triggerer is bounded).
    :param target_status: the state to reach, or ``"deleted"``.
    :param poll_interval: seconds between two reads.
    :param check_health: for ``running``, also require a 200 from the health route.
    :param settle_until: epoch (API clock) until which a ``running`` seen before any other state is
        the stale state from before an update (see ``EndpointsApi.watch``).
    :param max_consecutive_errors: transient read failures tolerated in a row.
    :param on_kill_action: ``pause``, ``scale_to_zero`` or ``none`` (default): what a user's kill of
        the waiting task does to the endpoint.
    :param pending_deadline: epoch (API clock) after which an endpoint still ``pending`` (no replica
        starting: no capacity) ends the wait with ``stuck_pending``: a hardware fallback's
        ``capacity_timeout``. ``None`` (default): pending is waited out like any other state.
    """

    def __init__(
        self,
        *,
        hf_conn_id: str,
        endpoint_name: str,
        namespace: str | None,
        end_time: float | None = None,
        target_status: str = "running",
        poll_interval: float = 30.0,
        check_health: bool = True,
        settle_until: float | None = None,
        max_consecutive_errors: int = 5,
        on_kill_action: str = "none",
        pending_deadline: float | None = None,
    ) -> None:
        super().__init__()
        check_choice("target_status", target_status, sorted(WAIT_TARGETS))
        check_choice("on_kill_action", on_kill_action, ON_KILL_ACTIONS)
        self.hf_conn_id = str(hf_conn_id)
        self.endpoint_name = str(endpoint_name)
        self.namespace = None if namespace is None else str(namespace)
        self.end_time = None if end_time is None else float(end_time)
        self.target_status = str(target_status)
        self.poll_interval = float(poll_interval)
        self.check_health = bool(check_health)
        self.settle_until = None if settle_until is None else float(settle_until)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.on_kill_action = on_kill_action
        self.pending_deadline = None if pending_deadline is None else float(pending_deadline)

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
                "on_kill_action": self.on_kill_action,
                "pending_deadline": self.pending_deadline,
            },
        )

    def _hook(self) -> HuggingFaceEndpointHook:
        return HuggingFaceEndpointHook(self.hf_conn_id, namespace=self.namespace)

    def _error(self, message: str) -> WatchResult:
        return WatchResult(Outcome.ERROR, self.endpoint_name, self.namespace, None, message, None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await self._hook().get_async_client()
        except Exception as exc:  # a broken connection must end the wait with a clear event, not a crash
            yield TriggerEvent(self._error(f"Connection {self.hf_conn_id!r}: {exc}").to_event())
            return
        try:
            result = await client.watch(
                self.endpoint_name,
                namespace=self.namespace,
                target=self.target_status,
                end_time=float("inf") if self.end_time is None else self.end_time,
                poll_interval=self.poll_interval,
                check_health=self.check_health,
                settle_until=self.settle_until,
                max_consecutive_errors=self.max_consecutive_errors,
                pending_deadline=self.pending_deadline,
            )
        except Exception as exc:  # whatever the API answered: one error event, never a crashed trigger
            self.log.exception("The wait for %s failed", self.endpoint_name)
            result = self._error(f"The wait for {self.endpoint_name} failed: {type(exc).__name__}: {exc}")
        finally:
            await client.aclose()
        self.log.info("%s", result.message)
        yield TriggerEvent(result.to_event())

    async def on_kill(self) -> None:
        """Apply ``on_kill_action`` to the endpoint: a user killed the task while it waited (3.3+)."""
        if self.on_kill_action == "none":
            return
        where = f"{self.namespace or '(default namespace)'}/{self.endpoint_name}"
        try:
            async with await self._hook().get_async_client() as client:
                stop = getattr(client, self.on_kill_action)
                await asyncio.wait_for(stop(self.endpoint_name, namespace=self.namespace), ON_KILL_SECONDS)
        except Exception as exc:  # best effort: the task is being killed either way
            self.log.warning("Task killed: could not %s endpoint %s: %s", self.on_kill_action, where, exc)
            return
        self.log.warning("Task killed while waiting: endpoint %s %s", where, _STOPPED[self.on_kill_action])


class HuggingFaceEndpointsReadyTrigger(BaseTrigger):
    """
    Wait in the triggerer until every one of several endpoints runs; yield one event at the first that does not.

    One wait per endpoint, side by side on one async client (the same ``watch()`` as every wait).
    The event comes as soon as all run (``success``), or as soon as one wait ends otherwise: failed,
    stuck ``pending`` past its ``pending_deadline``, timed out. The others are not waited out, so a
    window over several endpoints closes them all at once when one fails.

    The event is ``{"status", "result", "ready", "endpoints", "end_time"}``: the status of the wait that
    ended it (``success`` when all run), that wait's own event (see
    :class:`HuggingFaceEndpointStatusTrigger`), the endpoints that were running, and the
    ``endpoints`` and ``end_time`` the trigger was given (so the task goes on where it stood).

    :param hf_conn_id: the Airflow connection id.
    :param endpoints: ``{"name", "namespace", "pending_deadline"}`` each; ``pending_deadline`` (epoch,
        API clock, or ``None``) ends that endpoint's wait with ``stuck_pending`` if it is still
        pending then.
    :param end_time: absolute deadline of the whole wait, epoch seconds on the API's clock.
    :param poll_interval: seconds between two reads of each endpoint.
    :param check_health: also require a 200 from each health route.
    """

    def __init__(
        self,
        *,
        hf_conn_id: str,
        endpoints: list[dict[str, Any]],
        end_time: float,
        poll_interval: float = 30.0,
        check_health: bool = True,
    ) -> None:
        super().__init__()
        self.hf_conn_id = str(hf_conn_id)
        self.endpoints: list[dict[str, Any]] = [
            {
                "name": str(e["name"]),
                "namespace": None if e.get("namespace") is None else str(e["namespace"]),
                "pending_deadline": None
                if e.get("pending_deadline") is None
                else float(e["pending_deadline"]),
            }
            for e in endpoints
        ]
        self.end_time = float(end_time)
        self.poll_interval = float(poll_interval)
        self.check_health = bool(check_health)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hf_conn_id": self.hf_conn_id,
                "endpoints": self.endpoints,
                "end_time": self.end_time,
                "poll_interval": self.poll_interval,
                "check_health": self.check_health,
            },
        )

    def _event(self, status: str, result: dict[str, Any] | None, ready: list[str]) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "result": result,
                "ready": ready,
                "endpoints": self.endpoints,
                "end_time": self.end_time,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await HuggingFaceEndpointHook(self.hf_conn_id).get_async_client()
        except Exception as exc:  # a broken connection ends the wait with a clear event, not a crash
            failed = WatchResult(Outcome.ERROR, self.endpoints[0]["name"], None, None, str(exc), None)
            yield self._event(str(Outcome.ERROR), failed.to_event(), [])
            return
        waits = {
            asyncio.ensure_future(
                client.watch(
                    e["name"],
                    namespace=e["namespace"],
                    end_time=self.end_time,
                    poll_interval=self.poll_interval,
                    check_health=self.check_health,
                    pending_deadline=e["pending_deadline"],
                )
            ): e
            for e in self.endpoints
        }
        ready: list[str] = []
        try:
            while waits:
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    endpoint = waits.pop(finished)
                    try:
                        result = finished.result()
                    except Exception as exc:  # one error event, never a crashed trigger
                        result = WatchResult(
                            Outcome.ERROR,
                            endpoint["name"],
                            endpoint["namespace"],
                            None,
                            f"The wait for {endpoint['name']} failed: {type(exc).__name__}: {exc}",
                            None,
                        )
                    if result.status is Outcome.SUCCESS:
                        ready.append(endpoint["name"])
                        continue
                    others = " (the others are not waited for)" if len(self.endpoints) > 1 else ""
                    self.log.info("%s%s", result.message, others)
                    yield self._event(str(result.status), result.to_event(), ready)
                    return
            self.log.info("Running: %s", ", ".join(ready))
            yield self._event(str(Outcome.SUCCESS), None, ready)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
            await client.aclose()
