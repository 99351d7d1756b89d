"""What differs between the Airflow 3 versions this provider runs on, decided in one place."""

from __future__ import annotations

from airflow import __version__ as _airflow_version
from packaging.version import Version

_AIRFLOW = Version(Version(_airflow_version).base_version)

#: 3.3 renders a task's templated fields in the triggerer when it starts there (``start_from_trigger``)
#: and calls ``BaseTrigger.on_kill()`` when a user kills a deferred task.
AIRFLOW_V_3_3_PLUS = Version("3.3.0") <= _AIRFLOW
