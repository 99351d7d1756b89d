"""A DAG for the triggerer-restart test: two deferred waits, one the test lets succeed after the
restart, one that never can (its deadline must hold across the restart)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

with DAG(
    "hfep_triggerer_restart",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    HuggingFaceEndpointSensor(
        task_id="comes_up", endpoint_name="restart-ok", deferrable=True, poke_interval=1, timeout=180
    )
    HuggingFaceEndpointSensor(
        task_id="never_up", endpoint_name="restart-stuck", deferrable=True, poke_interval=1, timeout=45
    )
