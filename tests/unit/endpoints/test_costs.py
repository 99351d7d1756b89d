"""The night's bill and its ceiling, by hand: spend from replica lives, which cap fires when, stop_at."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_hfep.endpoints.costs import (
    Budget,
    WindowCaps,
    clock_time_after,
    idle_stop_scaling,
    next_cap,
    replica_seconds,
    spend_of,
)
from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.models import InferenceEndpoint, Replica
from airflow_provider_hfep.window.billing import billable_report

T0 = datetime(2026, 12, 7, 1, 30, tzinfo=UTC).timestamp()


def at(seconds: float) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def replica(start: float, stop: float | None = None, name: str = "r") -> Replica:
    return Replica(
        name,
        stop is None,
        False,
        "running" if stop is None else "stopped",
        None,
        at(start),
        stop and at(stop),
    )


def endpoint(
    state: str = "running", min_replica: int = 1, timeout: int | None = None, ready: int = 1
) -> InferenceEndpoint:
    scaling = {
        "minReplica": min_replica,
        "maxReplica": 4,
        **({"scaleToZeroTimeout": timeout} if timeout else {}),
    }
    return InferenceEndpoint.from_raw(
        {
            "name": "ep",
            "type": "authenticated",
            "status": {"state": state, "createdAt": at(0), "updatedAt": at(0), "readyReplica": ready},
            "model": {"repository": "gpt2", "framework": "pytorch", "image": {"tgi": {}}},
            "compute": {"instanceType": "nvidia-l4", "instanceSize": "x1", "scaling": scaling},
            "provider": {"vendor": "aws", "region": "us-east-1"},
        },
        "demo",
    )


def test_replicas_that_never_started_ran_nothing():
    waiting = [Replica("r", False, False, "pending")]  # waiting for capacity: no startedAt
    assert replica_seconds(waiting, T0, T0 + 100) == 0.0
    assert replica_seconds([Replica("r", False, False, "starting")], T0, T0 + 100) is None
    assert replica_seconds([], T0, T0 + 100) is None  # an empty listing tells nothing


def test_replica_seconds_clip_each_life_to_the_window():
    lives = [
        replica(-100, 50, "before-and-in"),
        replica(10, 70, "in"),
        replica(200, None, "after"),
        replica(40),
    ]
    assert replica_seconds(lives, T0, T0 + 100) == pytest.approx(50 + 60 + 0 + 60)
    assert (
        replica_seconds([Replica("r", True, False, "running")], T0, T0 + 100) is None
    )  # no times: cannot tell


def test_the_spend_of_a_window_counts_replicas_and_the_price():
    lives = [replica(0, None, "a"), replica(1800, None, "b")]  # a second replica half-way
    spend = spend_of(endpoint(), lives, 2.0, T0, T0 + 3600)
    assert spend.replica_seconds == pytest.approx(5400)
    assert spend.cost == pytest.approx(3.0)
    assert spend.replicas == 2
    assert spend.cost_per_second == pytest.approx(4.0 / 3600)
    fallback = spend_of(endpoint(ready=3), [], 2.0, T0, T0 + 600)  # a listing that says nothing
    assert fallback.replica_seconds == pytest.approx(1800)
    assert spend_of(endpoint("paused"), [], 2.0, T0, T0 + 600).replica_seconds == 0


def test_the_first_cap_to_fire_and_when():
    spend = spend_of(endpoint(), [replica(0)], 3.6, T0, T0 + 600)  # $0.60 so far, $0.001 a second
    budget = Budget(max_cost=1.0, max_runtime=3600, stop_at=T0 + 7200)
    fired = next_cap(budget, T0, T0 + 600, spend)
    assert (fired.cap, fired.at) == ("max_cost", pytest.approx(T0 + 1000))
    assert fired.cost == pytest.approx(1.0)
    assert next_cap(Budget(max_runtime=300), T0, T0 + 600, spend).at == T0 + 300  # already past: fired
    assert next_cap(Budget(stop_at=T0 + 60), T0, T0 + 10, spend).cap == "stop_at"
    assert (
        next_cap(Budget(max_cost=1.0), T0, T0 + 600, spend_of(endpoint(), [replica(0)], None, T0, T0 + 600))
        is None
    )
    assert fired.describe() == "max_cost=$1 reached after 1000.0 s; spent $1.0000"


def test_stop_at_is_the_next_such_time_of_day_in_its_zone():
    opened = datetime(2026, 12, 7, 1, 30, tzinfo=UTC).timestamp()  # 02:30 in Paris
    assert (
        clock_time_after("06:00", opened, "Europe/Paris")
        == datetime(2026, 12, 7, 5, 0, tzinfo=UTC).timestamp()
    )
    assert clock_time_after("01:00", opened, "UTC") == datetime(2026, 12, 8, 1, 0, tzinfo=UTC).timestamp()
    assert (
        clock_time_after("2026-12-07T04:00:00+00:00", opened)
        == datetime(2026, 12, 7, 4, tzinfo=UTC).timestamp()
    )
    for bad, field in (("25:00", "stop_at"), ("six", "stop_at")):
        with pytest.raises(InvalidEndpointArgumentError, match=field):
            clock_time_after(bad, opened)
    with pytest.raises(InvalidEndpointArgumentError, match="timezone"):
        WindowCaps(stop_at="06:00", timezone="Mars/Olympus")
    with pytest.raises(InvalidEndpointArgumentError, match="max_cost"):
        WindowCaps(max_cost=-1)


def test_the_net_is_armed_unless_the_endpoint_already_stops_as_soon():
    assert idle_stop_scaling(endpoint(min_replica=1), 15) == {"min_replica": 0, "scale_to_zero_timeout": 15}
    assert idle_stop_scaling(endpoint(min_replica=0, timeout=60), 15) == {
        "min_replica": 0,
        "scale_to_zero_timeout": 15,
    }
    assert idle_stop_scaling(endpoint(min_replica=0, timeout=5), 15) is None  # its own is tighter
    assert idle_stop_scaling(endpoint(min_replica=0), 15) is None  # the service's default: 15


def test_the_report_counts_what_the_replicas_say_and_names_the_cap():
    opened = endpoint("pending").to_dict()
    closed = {**opened, "status": "paused", "updated_at": datetime.fromtimestamp(T0 + 1000, UTC).isoformat()}
    lives = [replica(20, 1000, "a"), replica(500, 800, "b")]
    cap = {"cap": "max_runtime", "summary": "max_runtime=1000 s reached after 1000.0 s"}
    report = billable_report(opened, closed, 3.6, lives, cap)
    assert (report["replica_seconds"], report["billable_seconds"]) == (1280.0, 980.0)
    assert report["estimated_cost_usd"] == pytest.approx(1.28)
    assert (report["replicas"], report["source"], report["cap"]) == (2, "replicas", "max_runtime")
    assert report["hardware"] == "aws/us-east-1 nvidia-l4 x1"
    assert "max_runtime=1000 s" in report["summary"]
    assert billable_report(opened, closed, 3.6)["source"] == "status"
