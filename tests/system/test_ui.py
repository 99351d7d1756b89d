"""The Airflow UI in a real browser (Debian's chromium, driven by Playwright): the connection form as
the provider declares it, the connection test against the emulator, and the extra link."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(os.environ.get("HFEP_SCREENSHOTS", Path(__file__).parents[2] / "build" / "screenshots"))
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def page(stack):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    _, airflow, _ = stack
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1100})
        tab.goto(f"{airflow.url}/auth/token/login?next=/connections")
        tab.get_by_text("Add Connection").first.wait_for(timeout=60_000)
        yield tab
        browser.close()


def test_add_and_test_a_connection_through_the_form(page, stack):
    cloud, airflow, _ = stack
    host, port = cloud.url.rsplit(":", 1)
    page.get_by_text("Add Connection").first.click()
    page.get_by_text("Select Connection Type").click(force=True)
    page.keyboard.type("Hugging Face")
    page.keyboard.press("Enter")
    # relabelled standard fields with their placeholders; schema and login hidden
    token = page.locator("input[name=password]")
    assert page.get_by_text("API URL", exact=True).is_visible()
    assert page.get_by_text("Token", exact=True).is_visible()
    assert (
        page.locator("input[name=host]").get_attribute("placeholder")
        == "https://api.endpoints.huggingface.cloud"
    )
    assert token.get_attribute("type") == "password"
    assert token.get_attribute("placeholder").startswith("hf_...")
    assert page.locator("input[name=schema]").count() == 0
    assert page.locator("input[name=login]").count() == 0
    page.fill("input[name=connection_id]", "hf_ui")
    page.fill("input[name=host]", host)
    page.fill("input[name=port]", port)  # Airflow 3.3.2's list test sends port 0 when it is empty
    token.fill(cloud.token)
    page.get_by_text("Extra Fields", exact=True).click()
    for label in ("Namespace", "Hub URL", "Timeout (s)", "Max retries", "Verify TLS", "Allow plain http"):
        assert page.get_by_text(label, exact=True).is_visible(), label
    page.fill("input[name=element_namespace]", "demo")
    page.fill("input[name=element_hub_url]", cloud.url)
    page.screenshot(path=str(SHOTS / "connection-form.png"), full_page=True)
    page.get_by_role("button", name="Save").click()
    page.get_by_role("dialog").wait_for(state="hidden", timeout=30_000)
    stored = airflow.api("GET", "/connections/hf_ui")
    assert (stored["conn_type"], stored["host"], stored["port"]) == (
        "hf_inference_endpoints",
        host,
        int(port),
    )
    assert stored["password"] != cloud.token  # masked by the API

    cloud.clear_requests()
    page.get_by_label("Test Connection").first.click()
    page.get_by_text("Test Connection Successful").wait_for(timeout=60_000)
    assert page.get_by_text(f"Connected to {cloud.url} as namespace 'demo'").first.is_visible()
    page.screenshot(path=str(SHOTS / "connection-test.png"))
    assert any(
        r["path"] == "/v2/endpoint/demo" for r in cloud.requests("management")
    )  # it really asked the emulator


def test_a_finished_task_shows_the_endpoint_link(page, stack):
    cloud, airflow, _ = stack
    cloud.reset()
    run_id = airflow.trigger("hf_tgi_chat")
    deadline = time.time() + 180
    while airflow.run_state("hf_tgi_chat", run_id) not in ("success", "failed") and time.time() < deadline:
        time.sleep(1)
    assert airflow.run_state("hf_tgi_chat", run_id) == "success"
    page.goto(f"{airflow.url}/dags/hf_tgi_chat/runs/{run_id}/tasks/create")
    page.get_by_role("tab", name="Details").or_(page.get_by_text("Details", exact=True)).first.click()
    link = page.get_by_role("link", name="Hugging Face Endpoint")
    link.wait_for(timeout=60_000)
    assert link.get_attribute("href") == "https://endpoints.huggingface.co/demo/endpoints/zephyr-chat"
    page.screenshot(path=str(SHOTS / "extra-link.png"))
