"""The "Inference Endpoints" page on a real `airflow standalone` in headless Chromium (Debian's, driven
by Playwright): after the example nightly DAG ran against the emulator, an admin logs in, opens the page
in Airflow's navigation, sees the endpoints and last night's cost, resumes and pauses the endpoint and
sees its state change; a viewer (no edit rights) sees no button and gets 403 from the route; without a
session every route answers 401. One stack of its own: it needs users with roles (the shared stack
makes everyone admin). Screenshots go to build/screenshots/ (``$HFEP_SCREENSHOTS``) like the other UI
tests', or to docs/images/ (the README's) with HFEP_UPDATE_SCREENSHOTS=1: a run of the suite leaves the
tracked tree as it was."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from airflow_provider_hfep.emulator import Emulator
from airflow_provider_hfep.ui.app import usd
from airflow_provider_hfep.ui.plugin import PAGE_ROUTE, URL_PREFIX

from tests.helpers import wait_until
from tests.system.standalone import Standalone
from tests.system.test_nightly_standalone import TGI
from tests.system.test_ui import CHROMIUM, FLAGS

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.system

ROOT = Path(__file__).parents[2]
UPDATE_SCREENSHOTS = os.environ.get("HFEP_UPDATE_SCREENSHOTS") == "1"
DAG_ID = "hf_nightly_batch"
REPORT = "endpoint_window.cost_report"
PASSWORDS = {"admin": secrets.token_hex(8), "viewer": secrets.token_hex(8)}


def _plugin_installed() -> bool:
    return any(
        e.value.startswith("airflow_provider_hfep.ui.plugin") for e in entry_points(group="airflow.plugins")
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Emulator, Standalone]]:
    with Emulator(deploy_seconds=3, latency_ms=5) as cloud:
        home = tmp_path_factory.mktemp("ui-standalone")
        dags = tmp_path_factory.mktemp("ui-dags")
        shutil.copytree(ROOT / "example_dags", dags, dirs_exist_ok=True)
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps(PASSWORDS))
        if not _plugin_installed():
            # An install older than the entry point (an editable install made before it was added):
            # Airflow's plugins folder loads the same class. A fresh install (CI) uses the entry point.
            (home / "plugins").mkdir()
            (home / "plugins" / "hfep_page.py").write_text(
                "from airflow_provider_hfep.ui.plugin import HuggingFaceEndpointsPlugin  # noqa: F401\n"
            )
        env = {
            "PYTHONPATH": str(ROOT),  # this tree's package, whatever the environment installed
            "AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT": cloud.airflow_connection(),
            "HFEP_EXAMPLE_POLL_SECONDS": "1",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
        with Standalone(home, dags, env) as airflow:
            token = airflow.http.post(
                "/auth/token", json={"username": "admin", "password": PASSWORDS["admin"]}
            ).json()["access_token"]
            airflow.http.headers["authorization"] = f"Bearer {token}"
            yield cloud, airflow


@pytest.fixture(scope="module")
def night(site) -> dict:
    """Run the example nightly DAG once; return its cost report (XCom) and what its day cost in all."""
    cloud, airflow = site
    cloud.seed_endpoint("batch-endpoint", state="paused", model=TGI)
    cloud.seed_endpoint("spare-endpoint", state="paused")  # no DAG uses it: only connection editors act
    run_id = airflow.trigger(DAG_ID)
    state = wait_until(
        lambda: (s := airflow.run_state(DAG_ID, run_id)) in ("success", "failed") and s,
        f"{DAG_ID} to finish",
        limit=300,
        every=1,
    )
    assert state == "success", airflow.task_states(DAG_ID, run_id)
    # Unpausing the DAG may also have started its latest scheduled run: the day's cost is every run's.
    runs = wait_until(
        lambda: (
            (r := airflow.api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"])
            and all(run["state"] in ("success", "failed") for run in r)
            and r
        ),
        "every run to finish",
        limit=300,
        every=1,
    )
    reports = {
        run["dag_run_id"]: airflow.api(
            "GET",
            f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/{REPORT}/xcomEntries/return_value",
            params={"deserialize": "true", "stringify": "false"},
        )["value"]
        for run in runs
        if run["run_after"][:10] == next(r["run_after"][:10] for r in runs if r["dag_run_id"] == run_id)
    }
    return {
        "run_id": run_id,
        **reports[run_id],
        "day_cost": sum(r["estimated_cost_usd"] for r in reports.values()),
    }


@pytest.fixture(scope="module")
def browser(site):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install -y chromium)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _log_in(browser, airflow: Standalone, user: str):
    """A new browser session, logged in through Airflow's login form; the page opened from the nav."""
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    tab = context.new_page()
    tab.goto(f"{airflow.url}/")
    tab.get_by_label("Username").or_(tab.locator("input[name=username]")).first.fill(user)
    tab.locator("input[type=password]").fill(PASSWORDS[user])
    tab.get_by_role("button", name="Sign in").or_(tab.get_by_role("button", name="Login")).first.click()
    tab.get_by_role("button", name="Browse").or_(tab.get_by_text("Browse", exact=True)).first.click(
        timeout=60_000
    )
    tab.get_by_role("menuitem", name="Inference Endpoints").or_(
        tab.get_by_text("Inference Endpoints", exact=True)
    ).first.click(timeout=60_000)
    # The limit only ends a navigation that never comes: on a loaded machine (CI runs the suite beside
    # nothing else, but a developer's may not) the UI's first render can take longer than 30 s.
    tab.wait_for_url(f"**/plugin/{PAGE_ROUTE}*", timeout=120_000)
    return context, tab, tab.frame_locator("iframe")


def _state(frame, name: str) -> str:
    return frame.locator(f"tr[data-endpoint='{name}'] [data-testid=state]").inner_text()


@pytest.fixture(scope="module")
def images() -> Path:
    where = (
        ROOT / "docs" / "images"
        if UPDATE_SCREENSHOTS
        else Path(os.environ.get("HFEP_SCREENSHOTS", ROOT / "build" / "screenshots"))
    )
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_an_admin_sees_the_night_and_pauses_and_resumes(site, night, browser, images):
    cloud, airflow = site
    context, tab, frame = _log_in(browser, airflow, "admin")
    try:
        row = frame.locator("tr[data-endpoint='batch-endpoint']")
        row.wait_for(timeout=60_000)
        assert _state(frame, "batch-endpoint") == "paused"  # the window closed it
        assert "HuggingFaceH4/zephyr-7b-beta" in row.inner_text()
        assert "TGI" in row.inner_text()
        assert DAG_ID in row.inner_text()  # the DAG that runs it
        assert night["estimated_cost_usd"] > 0
        assert frame.get_by_test_id("last-night-cost").inner_text() == usd(night["day_cost"])
        assert row.get_by_test_id("endpoint-last-cost").inner_text() == usd(night["day_cost"])
        ours = frame.locator("#nights tbody tr", has_text=night["run_id"])
        assert ours.count() == 1
        assert usd(night["estimated_cost_usd"]) in ours.inner_text()
        assert f"{night['billable_seconds']:.0f}" in ours.inner_text()
        assert "120" in ours.inner_text()  # the 120 jobs of the example's file, answered
        assert frame.locator("#chart svg rect").count() >= 1  # today's bar
        # the spare endpoint has no DAG: an admin may edit connections, so it has a button too
        assert frame.locator("tr[data-endpoint='spare-endpoint'] button").count() == 1
        tab.screenshot(path=str(images / "ui-endpoints-page.png"))

        cloud.clear_requests()
        row.get_by_role("button", name="Resume").click()
        frame.get_by_role("status").wait_for()
        assert _state(frame, "batch-endpoint") != "paused"
        assert cloud.state("batch-endpoint") != "paused"
        assert any(
            r["method"] == "POST" and r["path"].endswith("/batch-endpoint/resume")
            for r in cloud.requests("management")
        )
        row.get_by_role("button", name="Pause").click()
        frame.get_by_text("pause of demo/batch-endpoint requested").wait_for()
        assert _state(frame, "batch-endpoint") == "paused"
        assert cloud.state("batch-endpoint") == "paused"
        tab.screenshot(path=str(images / "ui-endpoints-paused.png"))

        # the links out of the frame: the HF console in a new tab, a DAG in Airflow's own page
        asked: list[str] = []
        context.on("request", lambda request: asked.append(request.url))
        with context.expect_page() as console:
            row.locator("a[data-outside]").click()
        console.value.close()
        assert "https://endpoints.huggingface.co/demo/endpoints/batch-endpoint" in asked
        row.get_by_role("link", name=DAG_ID).click()
        tab.wait_for_url(f"**/dags/{DAG_ID}")
        tab.locator("iframe").wait_for(state="detached")  # Airflow's page itself, not Airflow in the frame
        tab.get_by_text(DAG_ID).first.wait_for()
    finally:
        context.close()


def test_a_viewer_sees_no_button_and_is_refused(site, night, browser, images):
    cloud, airflow = site
    context, tab, frame = _log_in(browser, airflow, "viewer")
    try:
        frame.locator("tr[data-endpoint='batch-endpoint']").wait_for(timeout=60_000)
        assert frame.locator("#endpoints button").count() == 0
        # a viewer may not read the connection: only the endpoints the DAGs they may read ran are listed
        assert frame.locator("tr[data-endpoint='spare-endpoint']").count() == 0
        assert frame.get_by_test_id("last-night-cost").inner_text() == usd(night["day_cost"])
        tab.screenshot(path=str(images / "ui-endpoints-viewer.png"))
        cloud.clear_requests()
        # the route itself refuses, with the viewer's own session cookie
        answer = context.request.post(
            f"{airflow.url}{URL_PREFIX}/endpoints/demo/batch-endpoint/resume",
            form={"conn": "hf_inference_endpoints_default"},
            headers={"origin": airflow.url},
            max_redirects=0,
        )
        assert answer.status == 403, answer.text()
        assert "edit access" in answer.text()
        assert not [r for r in cloud.requests("management") if r["method"] == "POST"]
        assert cloud.state("batch-endpoint") == "paused"
    finally:
        context.close()


def test_every_route_needs_a_session(site, night):
    _, airflow = site
    with httpx.Client(base_url=airflow.url) as anonymous:
        assert anonymous.get(f"{URL_PREFIX}/").status_code == 401
        assert (
            anonymous.post(
                f"{URL_PREFIX}/endpoints/demo/batch-endpoint/pause",
                data={"conn": "hf_inference_endpoints_default"},
            ).status_code
            == 401
        )
        forged = {"authorization": "Bearer not-a-token"}
        assert anonymous.get(f"{URL_PREFIX}/", headers=forged).status_code == 403
