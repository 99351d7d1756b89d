"""One emulator and one `airflow standalone` for the system tests (stopped, with every process, after)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_hfep.emulator import Emulator
from tests.system.standalone import Standalone

EXAMPLES = Path(__file__).parents[2] / "example_dags"


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Iterator[tuple[Emulator, Standalone, Path]]:
    with Emulator(deploy_seconds=8, latency_ms=20) as cloud:
        home = tmp_path_factory.mktemp("standalone")
        env = {
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "1",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        }
        with Standalone(home, EXAMPLES, env) as airflow:
            yield cloud, airflow, home
