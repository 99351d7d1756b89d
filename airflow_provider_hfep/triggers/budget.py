"""The trigger that watches a window's bill in the triggerer and closes the endpoint when a cap fires."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_hfep.endpoints.arguments import check_choice
from airflow_provider_hfep.endpoints.costs import (
    CLOSE_GRACE_SECONDS,
    Budget,
    next_cap,
    price_per_hour,
    spend_of,
)
from airflow_provider_hfep.endpoints.errors import EndpointsError, NotFoundError
from airflow_provider_hfep.endpoints.models import EndpointStatus
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

CLOSE_ACTIONS = ("pause", "scale_to_zero")
#: states in which the endpoint no longer bills: the window (or the service) closed it
CLOSED = frozenset({EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO, EndpointStatus.FAILED})


class HuggingFaceEndpointBudgetTrigger(BaseTrigger):
    """
    Watch what a window's endpoint costs; close it when a cap fires; yield exactly one event.

    Every ``poll_interval`` (and exactly when the first cap is due at the current rate) it reads the
    endpoint and its replicas and counts the spend since ``since`` from them (:func:`spend_of`): a
    triggerer that restarts counts the same spend. When a cap fires, the work (whose inference
    tasks watch the same caps) stops sending at once, and this trigger closes the endpoint
    ``close_grace`` seconds later. It ends without acting when the endpoint is closed by other hands
    (the window's close, a pause, the service's scale-to-zero).

    Event: ``{"status": "cap" | "closed" | "error", "endpoint_name", "namespace", "cap", "spend",
    "message"}``; ``cap`` is the fired cap's record (``CapFired.to_json()``), ``spend`` the last count.

    :param hf_conn_id: the Airflow connection id.
    :param endpoint_name: the endpoint.
    :param namespace: its namespace.
    :param since: when the window opened (epoch, the API's clock: the resume's answer).
    :param budget: the caps (``Budget.to_json()``).
    :param close: ``pause`` or ``scale_to_zero``: how the cap closes the endpoint.
    :param poll_interval: seconds between two looks at most.
    :param close_grace: seconds between a cap firing and the close (the work stops first).
    :param max_consecutive_errors: failed reads in a row tolerated before giving up with ``error``.
    """

    def __init__(
        self,
        *,
        hf_conn_id: str,
        endpoint_name: str,
        namespace: str | None,
        since: float,
        budget: dict[str, Any],
        close: str = "pause",
        poll_interval: float = 30.0,
        close_grace: float = CLOSE_GRACE_SECONDS,
        max_consecutive_errors: int = 5,
    ) -> None:
        super().__init__()
        check_choice("close", close, CLOSE_ACTIONS)
        self.hf_conn_id = str(hf_conn_id)
        self.endpoint_name = str(endpoint_name)
        self.namespace = None if namespace is None else str(namespace)
        self.since = float(since)
        self.budget = Budget(**budget)
        self.close = close
        self.poll_interval = float(poll_interval)
        # the work stops at the cap and the close follows: within one poll interval of the cap, always
        self.close_grace = min(float(close_grace), self.poll_interval / 2)
        self.max_consecutive_errors = int(max_consecutive_errors)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "hf_conn_id": self.hf_conn_id,
                "endpoint_name": self.endpoint_name,
                "namespace": self.namespace,
                "since": self.since,
                "budget": self.budget.to_json(),
                "close": self.close,
                "poll_interval": self.poll_interval,
                "close_grace": self.close_grace,
                "max_consecutive_errors": self.max_consecutive_errors,
            },
        )

    def _event(self, status: str, message: str, **more: Any) -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "endpoint_name": self.endpoint_name,
                "namespace": self.namespace,
                "message": message,
                **more,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            client = await HuggingFaceEndpointHook(
                self.hf_conn_id, namespace=self.namespace
            ).get_async_client()
        except Exception as exc:  # a broken connection ends the watch with a clear event
            yield self._event("error", f"Connection {self.hf_conn_id!r}: {exc}")
            return
        try:
            yield await self._watch(client)
        except Exception as exc:  # whatever the API answered: one error event, never a crashed trigger
            self.log.exception("The budget watch of %s failed", self.endpoint_name)
            yield self._event(
                "error", f"The budget watch of {self.endpoint_name} failed: {type(exc).__name__}: {exc}"
            )
        finally:
            await client.aclose()

    async def _watch(self, client: Any) -> TriggerEvent:
        price: float | None = None
        errors = 0
        fired = spend = None
        while True:
            try:
                endpoint = await client.get(self.endpoint_name, namespace=self.namespace)
                if endpoint.status in CLOSED:
                    closed_at = endpoint.updated_at.timestamp()
                    if fired is not None and closed_at >= fired.at:
                        # The cap fired, the work stopped, and the window's close came first: still the cap's doing.
                        replicas = await client.replicas(self.endpoint_name, namespace=self.namespace)
                        spend = spend_of(endpoint, replicas, price, self.since, closed_at)
                        message = f"{fired.describe()}; the window closed it ({endpoint.status})"
                        return self._event("cap", message, cap=fired.to_json(), spend=_spend_json(spend))
                    return self._event(
                        "closed", f"Endpoint {self.endpoint_name} is {endpoint.status}: the window is closed"
                    )
                if price is None and self.budget.max_cost is not None:
                    price = price_per_hour(await client.list_hardware(endpoint.namespace), endpoint.to_dict())
                replicas = await client.replicas(self.endpoint_name, namespace=self.namespace)
            except NotFoundError:
                return self._event("closed", f"Endpoint {self.endpoint_name} no longer exists")
            except EndpointsError as exc:
                errors += 1
                if errors > self.max_consecutive_errors:
                    return self._event(
                        "error",
                        f"Gave up watching {self.endpoint_name}'s bill after {errors} failed reads: {exc}",
                    )
                self.log.warning(
                    "Reading %s failed (%d/%d tolerated): %s",
                    self.endpoint_name,
                    errors,
                    self.max_consecutive_errors,
                    exc,
                )
                await asyncio.sleep(min(self.poll_interval, 5.0))
                continue
            errors = 0
            now = client.api_time
            spend = spend_of(endpoint, replicas, price, self.since, now)
            fired = next_cap(self.budget, self.since, now, spend)
            if fired is not None and now >= fired.at + self.close_grace:
                await getattr(client, self.close)(self.endpoint_name, namespace=self.namespace)
                self.log.warning(
                    "Endpoint %s closed (%s): %s", self.endpoint_name, self.close, fired.describe()
                )
                return self._event("cap", fired.describe(), cap=fired.to_json(), spend=_spend_json(spend))
            due = float("inf") if fired is None else fired.at + self.close_grace - now
            await asyncio.sleep(max(0.05, min(self.poll_interval, due)))


def _spend_json(spend: Any) -> dict[str, Any]:
    return {
        "seconds": round(spend.seconds, 3),
        "replica_seconds": round(spend.replica_seconds, 3),
        "replicas": spend.replicas,
        "price_per_hour": spend.price_per_hour,
        "cost_usd": None if spend.cost is None else round(spend.cost, 6),
    }
