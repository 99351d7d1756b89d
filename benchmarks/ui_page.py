"""The "Inference Endpoints" page with many nights: load time, cold and warm, and HF API requests per load.

A real ``airflow api-server`` (the provider's plugin mounted as Airflow mounts it) over a metadata
database seeded with 5,000 window runs of 50 DAGs (each with its cost report, its inference task's
work summary and the other window tasks' XComs: 20,000 XCom rows) over 100 days, across 100 endpoints
that the emulator serves. Each load is an HTTP GET of the page, authenticated as Airflow's UI is.

- first: the first load after the server starts (the app is built, every report decoded once; a
  connection without endpoints, so no listing);
- cold: the connection's endpoints not yet read (the first load of each of three connections to the
  same emulator), so the load reads the HF API (every page of the listing, the hardware listing);
- warm: loads within the cache's 20 s (median of ten), which read nothing from the API;
- beside them, Airflow's own ``GET /api/v2/dags?limit=100`` from the same server, as a reference.

The API requests are counted by the emulator (what reached it), not by the page.

    .venv/bin/python benchmarks/ui_page.py [--runs 5000] [--endpoints 100] [--smoke] [--screenshot PNG]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT))

from airflow_provider_hfep.emulator import Emulator  # noqa: E402

from tests.system.standalone import free_port  # noqa: E402

AIRFLOW = Path(sys.executable).with_name("airflow")
CONNECTIONS = ("hf_inference_endpoints_default", "hf_second", "hf_third")
SEED = """
import sys
from airflow.utils.session import create_session
from tests.ui_seed import seed_windows
with create_session() as session:
    seed_windows(session, int(sys.argv[1]), int(sys.argv[2]))
print(sys.argv[1], int(sys.argv[1]) * 4)
"""


def plugin_shim(home: Path) -> None:
    """Load the plugin from Airflow's plugins folder when this install predates its entry point."""
    if not any(e.value.startswith("airflow_provider_hfep.ui") for e in entry_points(group="airflow.plugins")):
        (home / "plugins").mkdir(exist_ok=True)
        (home / "plugins" / "hfep_page.py").write_text(
            "from airflow_provider_hfep.ui.plugin import HuggingFaceEndpointsPlugin  # noqa: F401\n"
        )


def screenshot(url: str, token: str, path: Path) -> None:
    """The page's chart as Debian's Chromium shows it, signed in with the token (Airflow's session cookie)."""
    from playwright.sync_api import sync_playwright

    from tests.system.test_ui import CHROMIUM, FLAGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1400})
        context.add_cookies([{"name": "_token", "value": token, "url": url}])
        tab = context.new_page()
        tab.goto(f"{url}/hf-inference-endpoints/?conn={CONNECTIONS[0]}")
        tab.locator("#chart").screenshot(path=str(path))
        browser.close()


def timed(client: httpx.Client, path: str, cloud: Emulator) -> tuple[float, int]:
    """One load: seconds, and the management API requests the emulator saw during it."""
    cloud.clear_requests()
    start = time.perf_counter()
    answer = client.get(path)
    elapsed = time.perf_counter() - start
    answer.raise_for_status()
    return elapsed, len(cloud.requests("management"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--warm", type=int, default=10, help="warm loads (the median is printed)")
    parser.add_argument("--smoke", action="store_true", help="small and quick: that the script runs")
    parser.add_argument(
        "--screenshot", type=Path, help="also save the page, as Chromium shows it, here (PNG)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.runs, args.endpoints, args.warm = 50, 5, 2
    with tempfile.TemporaryDirectory() as tmp, Emulator(latency_ms=20) as cloud:
        home = Path(tmp)
        plugin_shim(home)
        port = free_port()
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "PYTHONPATH": str(ROOT),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            **{f"AIRFLOW_CONN_{c.upper()}": cloud.airflow_connection() for c in CONNECTIONS},
        }
        env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True)
        seeding = subprocess.run(
            [sys.executable, "-c", SEED, str(args.runs), str(args.endpoints)],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        if seeding.returncode:
            raise SystemExit(f"seeding failed: {seeding.stderr[:3000]}")
        seeded = seeding.stdout.split()
        for index in range(args.endpoints):
            cloud.seed_endpoint(f"ep-{index:03d}", state="paused")
        log = open(home / "api-server.log", "wb")
        server = subprocess.Popen(
            [str(AIRFLOW), "api-server"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
            deadline = time.monotonic() + 180
            while True:
                try:
                    if client.get("/api/v2/monitor/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"the api-server did not start: see {home / 'api-server.log'}")
                time.sleep(0.5)
            token = client.get("/auth/token").json()["access_token"]
            client.headers["authorization"] = f"Bearer {token}"
            # the first load after the server starts: the app is built, every report decoded (no listing)
            first = timed(client, "/hf-inference-endpoints/?conn=none", cloud)[0]
            page = "/hf-inference-endpoints/?conn={}"
            cold = [timed(client, page.format(c), cloud) for c in CONNECTIONS]
            warm = [timed(client, page.format(CONNECTIONS[0]), cloud) for _ in range(args.warm)]
            body = client.get(page.format(CONNECTIONS[0])).text
            shown = body.count("<tr data-endpoint=")
            reference = [timed(client, "/api/v2/dags?limit=100", cloud)[0] for _ in range(args.warm)]
            if args.screenshot:
                screenshot(f"http://127.0.0.1:{port}", token, args.screenshot)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(30)
            log.close()
    ms = lambda seconds: f"{seconds * 1000:.0f} ms"
    print(
        f"seeded: {seeded[0]} window runs ({seeded[1]} XCom rows), {args.endpoints} endpoints; "
        f"the page lists {shown}"
    )
    print(f"first load after the api-server starts (app built, every report decoded): {ms(first)}")
    print(
        f"cold (endpoints read from the API): {', '.join(ms(t) for t, _ in cold)}; "
        f"API requests per load: {', '.join(str(n) for _, n in cold)}"
    )
    print(
        f"warm (cached listing):              median {ms(statistics.median(t for t, _ in warm))} "
        f"(max {ms(max(t for t, _ in warm))}); API requests per load: {max(n for _, n in warm)}"
    )
    print(f"reference, Airflow's GET /api/v2/dags?limit=100: median {ms(statistics.median(reference))}")
    worst = max(t for t, _ in cold + warm)
    print(
        f"ui_page: cold_ms={cold[0][0] * 1000:.0f} warm_ms={statistics.median(t for t, _ in warm) * 1000:.0f} "
        f"api_requests_cold={cold[0][1]} api_requests_warm={max(n for _, n in warm)} under_1s={worst < 1.0}"
    )


if __name__ == "__main__":
    main()
