"""
A cost-safe window around the work of a DAG: the endpoint runs only while the work needs it.

:func:`endpoint_window` builds the task group (:mod:`.task_group`); :func:`billable_report` is the
cost arithmetic of its report (:mod:`.billing`).
"""

from __future__ import annotations

from airflow_provider_hfep.window.billing import billable_report, price_per_hour
from airflow_provider_hfep.window.task_group import endpoint_window

__all__ = ["billable_report", "endpoint_window", "price_per_hour"]
