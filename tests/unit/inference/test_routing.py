"""What a server states of its limits, and how a batch starts from them."""

from __future__ import annotations

import pytest

from airflow_provider_hfep.inference import engines
from airflow_provider_hfep.inference.batch import BatchSettings
from airflow_provider_hfep.inference.routing import BatchRoute, ServerLimits
from airflow_provider_hfep.inference.tasks import task_for_engine

TGI_INFO = {"model_id": "m", "max_concurrent_requests": 128, "max_client_batch_size": 4, "router": "x"}
TEI_INFO = {
    "model_id": "m",
    "max_concurrent_requests": 512,
    "max_client_batch_size": 32,
    "max_batch_tokens": 16384,
}


def test_limits_are_read_from_tgi_and_tei_info():
    assert ServerLimits.from_info(TGI_INFO) == ServerLimits(128, 4, None)
    assert ServerLimits.from_info(TEI_INFO) == ServerLimits(512, 32, 16384)


@pytest.mark.parametrize(
    "info",
    [
        None,
        [],
        "128",
        {"max_concurrent_requests": "128"},
        {"max_concurrent_requests": 0},
        {"max_concurrent_requests": -3},
        {"max_concurrent_requests": True},
        {"max_concurrent_requests": 1.5},
    ],
)
def test_anything_but_a_positive_count_is_unknown(info):
    assert ServerLimits.from_info(info) == ServerLimits()


def route(limits: ServerLimits, task: str = "feature-extraction") -> BatchRoute:
    engine = engines.engine_for("tei")
    return BatchRoute(engine=engine, task=task_for_engine(task, "tei", "m"), url="https://e", limits=limits)


def test_settings_start_at_the_stated_capacity_of_every_replica_and_the_stated_request_size():
    settings = route(ServerLimits(16, 8, 16384)).settings_for(
        BatchSettings(max_concurrency=64, batch_size=32), 3
    )
    assert (settings.known_capacity, settings.batch_size, settings.max_concurrency) == (48, 8, 64)


def test_a_smaller_batch_size_asked_for_is_kept_and_nothing_stated_changes_nothing():
    asked = BatchSettings(max_concurrency=64, batch_size=4)
    assert route(ServerLimits(16, 8)).settings_for(asked, 1).batch_size == 4
    assert route(ServerLimits()).settings_for(asked, 2) == asked
