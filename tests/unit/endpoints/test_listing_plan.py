"""The listing plan driven by hand: answers no service we can run gives (a cursor handed back twice)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

from airflow_provider_hfep.endpoints import EndpointsError, RetryPolicy
from airflow_provider_hfep.endpoints.calls import EndpointsApi

from tests.unit.endpoints.test_models import RAW_RUNNING

if TYPE_CHECKING:
    from airflow_provider_hfep.endpoints.exchange import Send


def answer(send: Send, body: dict) -> httpx.Response:
    return httpx.Response(200, json=body, request=httpx.Request(send.method, send.url, params=send.params))


def test_a_cursor_handed_back_twice_ends_the_listing_with_an_error_not_a_loop():
    plan = EndpointsApi(
        api_url="https://api.test", hub_url="https://hub.test", namespace="ns", retry=RetryPolicy()
    ).list_in(namespace="ns")
    sent = [next(plan)]
    page = {"items": [RAW_RUNNING], "nextCursor": "c1"}
    sent.append(plan.send(answer(sent[-1], page)))
    with pytest.raises(EndpointsError, match="returned the cursor 'c1' twice"):
        plan.send(answer(sent[-1], page))
    assert [(s.params or {}).get("cursor") for s in sent] == [None, "c1"]


def test_an_empty_page_with_a_cursor_is_not_the_end_only_a_missing_cursor_is():
    # a service that filters (tags, search) after paging may answer an empty page with more behind it
    plan = EndpointsApi(
        api_url="https://api.test", hub_url="https://hub.test", namespace="ns", retry=RetryPolicy()
    ).list_in(namespace="ns", limit=5)
    first = next(plan)
    assert first.params == {"limit": 5}
    second = plan.send(answer(first, {"items": [], "nextCursor": "c1"}))
    assert second.params == {"limit": 5, "cursor": "c1"}
    with pytest.raises(StopIteration) as done:
        plan.send(answer(second, {"items": [RAW_RUNNING], "nextCursor": None}))
    assert [e.name for e in done.value.value] == [RAW_RUNNING["name"]]
