"""
pytest fixtures for DAG tests against the emulator (registered as the ``hfep_emulator`` plugin).

- ``hfep_emulator_session``: one emulator for the whole session (fast deploys: 0.5 s).
- ``hfep_emulator``: the same emulator, reset before the test, with
  ``AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT`` pointing at it for the test's duration.

pytest loads this module through its ``pytest11`` entry point. Where pytest is not installed (an
Airflow deployment) the module still imports, and defines nothing.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import TYPE_CHECKING

from airflow_provider_hfep.emulator import Emulator

if TYPE_CHECKING:
    from collections.abc import Iterator

if find_spec("pytest") is not None:
    import pytest

    @pytest.fixture(scope="session")
    def hfep_emulator_session() -> Iterator[Emulator]:
        with Emulator(
            deploy_seconds=0.5, cold_start_seconds=0.3, update_lag_seconds=0.2, latency_ms=5
        ) as emulator:
            yield emulator

    @pytest.fixture
    def hfep_emulator(hfep_emulator_session: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
        hfep_emulator_session.reset()
        monkeypatch.setenv(
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT", hfep_emulator_session.airflow_connection()
        )
        return hfep_emulator_session
