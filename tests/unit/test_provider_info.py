"""The provider registers as Airflow expects: schema-valid info, and the declared classes import."""

from __future__ import annotations

import ast
import importlib
import json
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

from airflow_provider_hfep.get_provider_info import get_provider_info


def test_provider_info_is_valid_against_airflows_schema():
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


def test_entry_point_points_at_get_provider_info():
    [entry] = [
        e
        for e in entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_provider_hfep")
    ]
    assert entry.load() is get_provider_info
    assert get_provider_info()["package-name"] == entry.dist.name


def test_declared_hook_matches_connection_type():
    [connection] = get_provider_info()["connection-types"]
    module, _, name = connection["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert hook.conn_type == connection["connection-type"] == "hf_inference_endpoints"
    assert hook.conn_name_attr == "hf_conn_id"
    assert hook.default_conn_name == "hf_inference_endpoints_default"
    assert connection["ui-field-behaviour"]["relabeling"]["password"] == "Token"
    assert set(connection["conn-fields"]) == {
        "namespace",
        "hub_url",
        "catalog_url",
        "timeout",
        "max_retries",
        "verify",
        "allow_insecure_http",
    }
    assert "get_ui_field_behaviour" not in vars(hook)
    assert "get_connection_form_widgets" not in vars(hook)


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


PACKAGE = Path(__file__).parents[2] / "airflow_provider_hfep"


PURE = [
    *(PACKAGE / "endpoints").rglob("*.py"),
    *(PACKAGE / "inference").rglob("*.py"),
    *(PACKAGE / "emulator").rglob("*.py"),
    PACKAGE / "window" / "billing.py",
    PACKAGE / "ui" / "nights.py",
    PACKAGE / "ui" / "chart.py",
]


def test_pure_layers_import_no_airflow():
    assert len(PURE) >= 20
    # the subpackages are covered too (the engines on both sides)
    assert {"inference/engines", "emulator/engines"} <= {
        p.parent.relative_to(PACKAGE).as_posix() for p in PURE
    }
    for path in PURE:
        airflow_imports = {m for m in _imported_modules(path) if m == "airflow" or m.startswith("airflow.")}
        assert not airflow_imports, f"{path} imports {airflow_imports}"


def test_inference_reaches_http_helpers_without_the_management_client():
    for path in (PACKAGE / "inference").rglob("*.py"):
        management = {
            m
            for m in _imported_modules(path)
            if m.endswith((".endpoints.client", ".endpoints.calls", ".endpoints.watch"))
        }
        assert not management, f"{path.name} imports {management}"


def test_the_import_paths_users_and_airflow_store_still_resolve():
    """DAGs import these; Airflow stores the trigger's class path with every deferred task."""
    paths = [
        "airflow_provider_hfep.operators.endpoint.HuggingFaceCreateEndpointOperator",
        "airflow_provider_hfep.operators.inference.HuggingFaceEndpointInferenceOperator",
        "airflow_provider_hfep.sensors.endpoint.HuggingFaceEndpointSensor",
        "airflow_provider_hfep.hooks.endpoint.HuggingFaceEndpointHook",
        "airflow_provider_hfep.links.endpoint.HuggingFaceEndpointLink",
        "airflow_provider_hfep.window.endpoint_window",
        "airflow_provider_hfep.window.billable_report",
        "airflow_provider_hfep.triggers.endpoint.HuggingFaceEndpointStatusTrigger",
    ]
    for path in paths:
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name), path


def test_emulator_imports_nothing_from_the_client_layer():
    emulator = list((PACKAGE / "emulator").rglob("*.py"))
    assert any(p.parent.name == "engines" for p in emulator)
    for path in emulator:
        ours = {m for m in _imported_modules(path) if m.startswith("airflow_provider_hfep")}
        assert all(m.startswith("airflow_provider_hfep.emulator") for m in ours), (
            f"{path.name} imports {ours}"
        )


def test_nothing_outside_the_emulator_imports_it():
    """The client and the emulator are two implementations of the engines; only tests compare them."""
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.relative_to(PACKAGE).parts:
            continue
        emulator = {m for m in _imported_modules(path) if m.startswith("airflow_provider_hfep.emulator")}
        assert not emulator, f"{path.relative_to(PACKAGE)} imports {emulator}"
