"""A window around slow work, for the test that marks its run failed by hand mid-work."""

from __future__ import annotations

import time

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_hfep.window import endpoint_window

with DAG(
    "hfep_window_marked_failed",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["test"],
):
    with endpoint_window("mark-win", poke_interval=1, wait_timeout=120):

        @task
        def slow_work() -> None:
            time.sleep(300)

        @task
        def after_work() -> None:
            pass

        slow_work() >> after_work()
