"""The plugin Airflow loads: the page's app and nav entry on 3.1+, nothing when turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from airflow_provider_hfep._compat import AIRFLOW_V_3_1_PLUS
from airflow_provider_hfep.ui.plugin import PAGE_ROUTE, URL_PREFIX, HuggingFaceEndpointsPlugin

ROOT = Path(__file__).parents[3]
PROBE = """
import json
from airflow_provider_hfep.ui.plugin import HuggingFaceEndpointsPlugin as P
print(json.dumps({"apps": [a["url_prefix"] for a in P.fastapi_apps], "views": [v["url_route"] for v in P.external_views]}))
"""


def test_the_entry_point_names_the_plugin_class():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "airflow.plugins"
    ]
    assert declared == {
        "hf_inference_endpoints": "airflow_provider_hfep.ui.plugin:HuggingFaceEndpointsPlugin"
    }
    installed = [e for e in entry_points(group="airflow.plugins") if e.name == "hf_inference_endpoints"]
    if installed:  # an install made before the entry point was added has none yet
        assert installed[0].load() is HuggingFaceEndpointsPlugin


@pytest.mark.skipif(not AIRFLOW_V_3_1_PLUS, reason="Airflow 3.0 has no place for the page")
def test_the_page_is_mounted_and_in_the_nav():
    [app] = HuggingFaceEndpointsPlugin.fastapi_apps
    [view] = HuggingFaceEndpointsPlugin.external_views
    assert app["url_prefix"] == URL_PREFIX
    assert callable(app["app"])
    assert view == {
        "name": "Inference Endpoints",
        "href": f"{URL_PREFIX}/",
        "destination": "nav",
        "category": "browse",
        "url_route": PAGE_ROUTE,
    }


@pytest.mark.parametrize(("setting", "mounted"), [("False", False), ("True", AIRFLOW_V_3_1_PLUS)])
def test_the_switch_turns_the_page_off(setting, mounted):
    env = {**os.environ, "AIRFLOW__HF_INFERENCE_ENDPOINTS__UI_PAGE": setting, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found == ({"apps": [URL_PREFIX], "views": [PAGE_ROUTE]} if mounted else {"apps": [], "views": []})
