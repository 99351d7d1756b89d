"""What the published package carries: the wheel and the sdist built from this tree, as users get them."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([str(uv), "build", "--quiet", "--out-dir", str(out), str(ROOT)], check=True)
    return out


def test_the_wheel_ships_the_license_and_py_typed(dist):
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "airflow_provider_hfep/py.typed" in names  # users' type checkers read our hints
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "License-Expression: Apache-2.0" in metadata
    assert "Apache License" in (ROOT / "LICENSE").read_text()


def test_the_sdist_ships_the_license_and_py_typed(dist):
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "airflow_provider_hfep/py.typed", "pyproject.toml"} <= names


def test_the_wheel_ships_the_page_and_its_plugin_entry_point(dist):
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = archive.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    assert "airflow_provider_hfep/ui/templates/page.html" in names  # the page's template, read at run time
    assert "[airflow.plugins]" in entry_points
    assert (
        "hf_inference_endpoints = airflow_provider_hfep.ui.plugin:HuggingFaceEndpointsPlugin" in entry_points
    )
