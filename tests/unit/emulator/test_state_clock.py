"""
The emulator's state clock on a clock the test holds: each state is looked at while it lasts.

The emulated cloud moves an endpoint through its states on the wall clock (``World.advance``). Over
HTTP a test can only sample that clock, and a state lasting a fraction of a second may fall between two
samples. Here the test owns the clock the world reads, so every state is there when the test looks,
and each transition is checked at the instant it is due, no sooner.
"""

from __future__ import annotations

import pytest

from airflow_provider_hfep.emulator import Settings, state
from airflow_provider_hfep.emulator.state import World, zulu

BODY = {
    "name": "clocked",
    "type": "authenticated",
    "provider": {"vendor": "aws", "region": "us-east-1"},
    "compute": {
        "accelerator": "cpu",
        "instanceType": "intel-spr",
        "instanceSize": "x2",
        "scaling": {"minReplica": 1, "maxReplica": 1},
    },
    "model": {"repository": "gpt2", "framework": "pytorch", "image": {"huggingface": {}}},
}
DEPLOY, LAG, COLD_START = 8.0, 2.0, 4.0


class Clock:
    """Stands in for the ``time`` module the world reads: it moves only when the test moves it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    held = Clock(1_800_000_000.0)
    monkeypatch.setattr(state, "time", held)
    return held


@pytest.fixture
def world(clock: Clock) -> World:
    cloud = World(Settings(deploy_seconds=DEPLOY, update_lag_seconds=LAG, cold_start_seconds=COLD_START))
    cloud.base_url = "http://emulator.test"
    return cloud


def status_at(world: World, clock: Clock, when: float) -> dict:
    """What a read of the endpoint answers at ``when`` (epoch seconds on the held clock)."""
    clock.now = when
    endpoint = world.get("demo", "clocked")
    assert endpoint is not None
    return world.to_json(endpoint)["status"]


def test_a_deployment_is_pending_then_initializing_for_the_rest_of_the_deploy_then_running(world, clock):
    created = world.create("demo", BODY, "demo").created_at
    pending = status_at(world, clock, created)
    assert (pending["state"], pending.get("url")) == ("pending", None)
    assert status_at(world, clock, created + DEPLOY / 4 - 0.001)["state"] == "pending"
    initializing = status_at(world, clock, created + DEPLOY / 4)  # a quarter of the deploy is scheduling
    assert initializing["state"] == "initializing"
    assert initializing["updatedAt"] == zulu(created + DEPLOY / 4)
    assert (initializing["readyReplica"], initializing["targetReplica"]) == (0, 1)
    assert status_at(world, clock, created + DEPLOY - 0.001)["state"] == "initializing"
    running = status_at(world, clock, created + DEPLOY)
    assert running["state"] == "running"
    assert running["url"] == "http://emulator.test/endpoints/demo/clocked"
    assert running["updatedAt"] == zulu(created + DEPLOY)
    assert running["readyReplica"] == 1


def test_a_late_read_sees_the_state_that_is_due_stamped_when_it_was_due(world, clock):
    created = world.create("demo", BODY, "demo").created_at
    running = status_at(world, clock, created + 10 * DEPLOY)  # nobody looked in between
    assert running["state"] == "running"
    assert running["updatedAt"] == zulu(created + DEPLOY)
    (replica,) = world.get("demo", "clocked").replica_log
    assert replica.started == created + DEPLOY / 4  # its replica started when it began initializing


def test_an_update_shows_the_old_state_for_the_lag_then_updating_then_running(world, clock):
    endpoint = world.create("demo", BODY, "demo", state="running")
    put = clock.now = endpoint.created_at + 100.0
    world.update(endpoint, {"compute": {"scaling": {"maxReplica": 2}}})
    assert status_at(world, clock, put)["state"] == "running"  # the race a client that trusts it falls into
    assert status_at(world, clock, put + LAG - 0.001)["state"] == "running"
    updating = status_at(world, clock, put + LAG)
    assert updating["state"] == "updating"
    assert updating["updatedAt"] == zulu(put + LAG)
    assert status_at(world, clock, put + LAG + DEPLOY - 0.001)["state"] == "updating"
    done = status_at(world, clock, put + LAG + DEPLOY)
    assert done["state"] == "running"
    assert done["updatedAt"] == zulu(put + LAG + DEPLOY)


def test_a_scaled_to_zero_endpoint_woken_by_a_request_initializes_for_the_cold_start(world, clock):
    endpoint = world.create("demo", BODY, "demo", state="scaledToZero")
    woken = clock.now = endpoint.created_at + 100.0
    world.wake(endpoint)
    initializing = status_at(world, clock, woken)
    assert initializing["state"] == "initializing"
    assert initializing["url"] == "http://emulator.test/endpoints/demo/clocked"  # it kept its URL
    assert status_at(world, clock, woken + COLD_START - 0.001)["state"] == "initializing"
    assert status_at(world, clock, woken + COLD_START)["state"] == "running"
