"""
TGI's own Python client (``text-generation``) against the emulator's TGI data plane: generate with
details, ``generate_stream``, sync and async. That client pins ``huggingface_hub<1`` while this
project needs 1.x, so it runs in an environment of its own, built once under ``.cache/`` (uv, the
project's package cache) and reused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_hfep.emulator import runners

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CLIENT_ENV = ROOT / ".cache" / "tgi-client-0.7.0"
CLIENT = "text-generation==0.7.0"

SCRIPT = """
import asyncio, json, sys
from text_generation import AsyncClient, Client

url, token, prompt = sys.argv[1:4]
headers = {"Authorization": f"Bearer {token}"}
client = Client(url, headers=headers, timeout=30)
answer = client.generate(prompt, max_new_tokens=6)  # always with details
streamed = [r.token.text for r in client.generate_stream(prompt, max_new_tokens=6)]
last = list(client.generate_stream(prompt, max_new_tokens=6))[-1]

async def main():
    pieces = []
    async for response in AsyncClient(url, headers=headers, timeout=30).generate_stream(prompt, max_new_tokens=6):
        pieces.append(response.token.text)
    return pieces

print(json.dumps({
    "text": answer.generated_text,
    "tokens": [t.text for t in answer.details.tokens],
    "streamed": streamed,
    "last_text": last.generated_text,
    "last_details": last.details.generated_tokens if last.details else None,
    "async": asyncio.run(main()),
}))
"""


@pytest.fixture(scope="session")
def tgi_client_python() -> Path:
    python = CLIENT_ENV / "bin" / "python"
    if not python.exists():  # built aside, then moved in place: a failed install is never reused
        uv = Path(sys.executable).parent / "uv"
        building = CLIENT_ENV.with_name(CLIENT_ENV.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, building], check=True)
        subprocess.run(
            [uv, "pip", "install", "--quiet", "--python", building / "bin" / "python", CLIENT], check=True
        )
        building.rename(CLIENT_ENV)
    return python


def test_tgis_own_client_generates_and_streams(cloud, tgi_client_python):
    cloud.seed_endpoint("gen")
    prompt = "The nightly batch"
    done = subprocess.run(
        [tgi_client_python, "-c", SCRIPT, cloud.endpoint_url("gen"), cloud.token, prompt],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    expected = runners.generate_text(prompt, 6)
    assert seen["text"] == expected
    assert "".join(seen["tokens"]) == expected
    assert "".join(seen["streamed"]) == expected
    assert len(seen["streamed"]) == 6
    assert seen["last_text"] == expected
    assert seen["last_details"] == 6
    assert seen["async"] == seen["streamed"]
