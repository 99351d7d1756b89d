"""
What differs between the Airflow 3 versions this provider runs on (3.0 to 3.4), decided in one place.

Everything else imports from here. Nothing here needs ``apache-airflow-providers-common-compat``:
the managed services pin releases of it (1.7.3 on MWAA's 3.0.6) that predate the helpers a newer
provider would reach for, so each difference is handled with Airflow's own modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow import __version__ as _airflow_version
from packaging.version import Version

if TYPE_CHECKING:
    from airflow.sdk import Connection, TaskGroup

__all__ = [
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "AIRFLOW_V_3_3_PLUS",
    "AIRFLOW_V_3_4_PLUS",
    "AirflowFailException",
    "AirflowNotFoundException",
    "AirflowSensorTimeout",
    "BaseHook",
    "enclosing_task_loop",
    "conf",
    "get_connection_async",
    "mask_secret",
]

_installed = Version(Version(_airflow_version).base_version)

#: 3.1's UI shows plugins' pages (``external_views``, ``react_apps``); 3.0 mounts ``fastapi_apps`` but
#: has no place for them in the UI.
AIRFLOW_V_3_1_PLUS = _installed >= Version("3.1.0")
#: 3.2 reads the connection form from the provider info (``conn-fields``) and deprecates the hook's
#: ``get_connection_form_widgets()`` / ``get_ui_field_behaviour()``, which 3.0 and 3.1 need.
AIRFLOW_V_3_2_PLUS = _installed >= Version("3.2.0")
#: 3.3 renders a task's templated fields in the triggerer when it starts there (``start_from_trigger``)
#: and calls ``BaseTrigger.on_kill()`` when a user kills a deferred task.
AIRFLOW_V_3_3_PLUS = _installed >= Version("3.3.0")
#: 3.4 adds task loops (``.loop()``), and retry policies that reschedule a task without using a retry.
AIRFLOW_V_3_4_PLUS = _installed >= Version("3.4.0")

# The Task SDK exports these from 3.1 (BaseHook) and 3.2 (conf, the exceptions); before, they live in
# Airflow core, and the SDK raises the core exceptions. (mypy checks against the newest Airflow, where
# the fallbacks are absent or typed differently: hence the ignores.)
try:
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[attr-defined,no-redef]
try:
    from airflow.sdk import conf
except ImportError:  # Airflow 3.0, 3.1
    from airflow.configuration import conf  # type: ignore[assignment]
try:
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSensorTimeout
except ImportError:  # Airflow 3.0, 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowFailException,
        AirflowNotFoundException,
        AirflowSensorTimeout,
    )

try:
    # Airflow 3.4's task loops (``@task_group`` ... ``.loop()``); the class is not exported by name.
    from airflow.sdk.definitions._internal.loop import LoopTaskGroup  # type: ignore[import-not-found]
except ImportError:  # Airflow before 3.4: no task loops
    LoopTaskGroup = None

try:
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 3.0
    from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]


def enclosing_task_loop(group: TaskGroup | None) -> str | None:
    """
    Name the task loop (Airflow 3.4's ``.loop()``) that ``group`` is part of, if any.

    :param group: a task group (its parents are looked at too).
    :return: the loop's group id, or ``None`` (always before 3.4).
    """
    while group is not None and LoopTaskGroup is not None:
        if isinstance(group, LoopTaskGroup):
            return group.group_id
        group = group.parent_group
    return None


def _masks_asynchronously() -> bool:
    """
    Tell whether this Airflow masks a connection's secrets without blocking the event loop.

    Airflow 3.3.2 added ``Connection.aextra_dejson()`` with asynchronous masking. Before it, even
    ``BaseHook.aget_connection()`` masks with a blocking call to the supervisor, which fails
    (``DeadlockImminentError``) while another request of the same event loop is in flight: a
    triggerer running many triggers hits that.
    """
    from airflow.sdk import Connection

    return hasattr(Connection, "aextra_dejson")


async def get_connection_async(hook: BaseHook, conn_id: str) -> tuple[Connection, dict[str, Any]]:
    """
    Fetch a connection and its extras from a coroutine (a trigger), never blocking the event loop.

    Where Airflow masks asynchronously (3.3.2 and later) its own coroutines are used. Before, the
    blocking calls run in a worker thread through ``asgiref`` (which Airflow uses to bridge its
    supervisor calls), where waiting on the supervisor is safe: the loop goes on meanwhile.

    :param hook: the hook (its ``get_connection`` is the one to honour).
    :param conn_id: the connection id.
    :return: the connection and its extras as a dict.
    """
    if _masks_asynchronously():
        conn = await hook.aget_connection(conn_id)
        return conn, await conn.aextra_dejson()

    from asgiref.sync import sync_to_async

    def blocking() -> tuple[Connection, dict[str, Any]]:
        conn = hook.get_connection(conn_id)
        return conn, conn.extra_dejson

    return await sync_to_async(blocking)()
