"""One emulator and one `airflow standalone` for the system tests (stopped, with every process, after).

The token is distinctive and random, so the audit can search every trace Airflow keeps for it. The DAGs
folder holds the example DAGs and the system tests' own (tests/system/dags)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_provider_hfep.emulator import Emulator

from tests.system.standalone import Standalone

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = Path(__file__).parents[2] / "example_dags"
SYSTEM_DAGS = Path(__file__).parent / "dags"


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[tuple[Emulator, Standalone, Path]]:
    token = f"hf_AuditToken{secrets.token_hex(12)}"
    with Emulator(users=[f"demo:{token}"], deploy_seconds=8, latency_ms=20) as cloud:
        home = tmp_path_factory.mktemp("standalone")
        dags = tmp_path_factory.mktemp("dags")
        shutil.copytree(EXAMPLES, dags, dirs_exist_ok=True)
        shutil.copytree(SYSTEM_DAGS, dags, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        env = {
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "1",
            "HFEP_EXAMPLE_RETRY_SECONDS": "3",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            # a killed triggerer's triggers go to another one after 10 s without a heartbeat (default 30)
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
        }
        with Standalone(home, dags, env) as airflow:
            yield cloud, airflow, home
