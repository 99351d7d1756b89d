"""The sync and async clients expose the same calls: same names, parameters, defaults and return types."""

from __future__ import annotations

import inspect

import pytest

from airflow_provider_hfep.endpoints import AsyncEndpointsClient, EndpointsClient

# How each client is closed and used as a context manager differs by nature (close/aclose, with/async with).
LIFECYCLE = {
    EndpointsClient: {"close", "__enter__", "__exit__"},
    AsyncEndpointsClient: {"aclose", "__aenter__", "__aexit__"},
}


def public_calls(cls: type) -> dict[str, inspect.Signature]:
    calls = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("_") or name in LIFECYCLE[cls] or not inspect.isfunction(member):
            continue
        calls[name] = inspect.signature(member)
    return calls


SYNC, ASYNC = public_calls(EndpointsClient), public_calls(AsyncEndpointsClient)


def test_both_clients_have_the_same_calls():
    assert set(SYNC) == set(ASYNC)
    assert len(SYNC) >= 14  # every management call, not an accidentally empty comparison


@pytest.mark.parametrize("name", sorted(SYNC))
def test_each_call_has_the_same_parameters_and_return_type(name):
    sync, other = SYNC[name], ASYNC[name]
    assert list(sync.parameters.values()) == list(other.parameters.values()), name
    assert sync.return_annotation == other.return_annotation, name
    assert sync.return_annotation is not inspect.Signature.empty, f"{name} has no return type"


@pytest.mark.parametrize("name", sorted(SYNC))
def test_async_calls_are_coroutines_and_sync_ones_are_not(name):
    assert inspect.iscoroutinefunction(getattr(AsyncEndpointsClient, name))
    assert not inspect.iscoroutinefunction(getattr(EndpointsClient, name))


def test_the_same_properties():
    def properties(cls: type) -> set[str]:
        return {n for n, m in inspect.getmembers(cls) if isinstance(m, property) and not n.startswith("_")}

    assert (
        properties(EndpointsClient)
        == properties(AsyncEndpointsClient)
        == {
            "allow_insecure_http",
            "api_time",
            "api_url",
            "auth",
            "timeout",
            "verify",
        }
    )
