"""
The checks of one compatibility target, run by that target's own Python (``tests/compat/run.py``).

Only the standard library, Airflow and the installed provider are used: the environment is what a
user of a managed service has, without pytest or the project's sources (but for the example DAGs).
Prints one JSON line of results; exits 1 if any check failed.

    <target venv>/bin/python tests/compat/check.py --examples example_dags --scratch /tmp/x
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

CONN_TYPE = "hf_inference_endpoints"
EXTRA_FIELDS = {
    "namespace",
    "hub_url",
    "catalog_url",
    "timeout",
    "max_retries",
    "verify",
    "allow_insecure_http",
}
EXAMPLE_DAGS = {"hf_endpoint_lifecycle", "hf_nightly_batch", "hf_nightly_results", "hf_tgi_chat"}


def registered() -> str:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-provider-hfep" in manager.providers, sorted(manager.providers)
    assert CONN_TYPE in manager.hooks, "the connection type is not registered"
    return f"provider {manager.providers['airflow-provider-hfep'].version}, connection type {CONN_TYPE}"


def connection_form() -> str:
    """The form metadata the UI reads (the API server's hook meta service), and no deprecation warning."""
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hooks = HookMetaService.hook_meta_data()
    [ours] = [hook.model_dump() for hook in hooks if hook.connection_type == CONN_TYPE]
    extra = ours["extra_fields"] or {}
    assert set(extra) == EXTRA_FIELDS, f"extra fields: {sorted(extra)}"
    assert extra["namespace"]["schema"]["title"] == "Namespace", extra["namespace"]
    standard = ours["standard_fields"] or {}
    assert standard["password"]["title"] == "Token", standard
    assert standard["host"]["title"] == "API URL", standard
    assert standard["login"]["hidden"], standard
    assert standard["url_schema"]["hidden"], standard
    ours_warned = [str(w.message) for w in caught if "airflow_provider_hfep" in str(w.message)]
    assert not ours_warned, ours_warned
    return f"extra fields {sorted(extra)}; Token and API URL labels; login and schema hidden"


def every_module_imports() -> str:
    import airflow_provider_hfep

    assert importlib.util.find_spec("pytest") is None, "pytest is installed: this check means without it"
    names = [
        module.name
        for module in pkgutil.walk_packages(airflow_provider_hfep.__path__, "airflow_provider_hfep.")
        # a program, not a module; and what only the OpenLineage provider calls, which needs it
        if module.name not in ("airflow_provider_hfep.emulator.__main__", "airflow_provider_hfep.lineage")
    ]
    for name in names:
        importlib.import_module(name)
    return f"{len(names)} modules"


def _dag_bag(folder: Path) -> Any:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow before 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]

    return DagBag(dag_folder=str(folder))


def examples_parse(examples: Path) -> str:
    bag = _dag_bag(examples)
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dag_ids) == EXAMPLE_DAGS, bag.dag_ids
    return f"{len(bag.dag_ids)} DAGs, no import error"


def examples_run(examples: Path, scratch: Path) -> str:
    """`airflow dags test` of the lifecycle and the nightly batch against the emulator: green, and deferred."""
    from airflow_provider_hfep.emulator import Emulator

    airflow = Path(sys.executable).with_name("airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(scratch / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(examples),
        "HFEP_EXAMPLE_POLL_SECONDS": "0.2",
    }
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    found = []
    with Emulator(deploy_seconds=1, cold_start_seconds=0.5, update_lag_seconds=0.2, latency_ms=5) as cloud:
        env["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        cloud.seed_endpoint("batch-endpoint", state="paused")
        runs = {
            "hf_endpoint_lifecycle": ("create", "zephyr-7b-beta-tgi", []),
            "hf_nightly_batch": (
                "resume",
                "batch-endpoint",
                ["--conf", json.dumps({"output_dir": str(scratch / "results")})],
            ),
        }
        for dag_id, (starts, endpoint, arguments) in runs.items():
            # Whatever the machine's speed, the sensor's first look (on the worker) finds the endpoint
            # deploying, so it defers; the trigger's first look lets it come up.
            cloud.on(starts, endpoint, state="initializing")
            cloud.on("get", endpoint, state="running", after=1)
            done = subprocess.run(
                [str(airflow), "dags", "test", dag_id, *arguments],
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            output = done.stdout + done.stderr
            (scratch / f"{dag_id}.log").write_text(output)
            assert done.returncode == 0, output[-3000:]
            state = _last_run_state(env, dag_id)
            assert state == "success", f"{dag_id} ended {state}: {output[-3000:]}"
            assert "running trigger in line" in output, f"{dag_id}: nothing deferred"
            # Airflow 3.0's `dags test` logs at debug level the value it asks the masker to hide; any
            # other line with the token would be ours.
            leaks = [
                line for line in output.splitlines() if cloud.token in line and "MaskSecret(" not in line
            ]
            assert not leaks, leaks[:3]
            found.append(f"{dag_id} success, deferred {output.count('running trigger in line')}x")
        assert all(rule["fired"] for rule in cloud.rules()), cloud.rules()
        results = [line for path in (scratch / "results").rglob("chunk-*.jsonl") for line in path.open()]
        assert len(results) == 120, len(results)
        assert cloud.state("batch-endpoint") == "paused"
    return "; ".join(found) + "; 120 results; endpoint paused"


CONCURRENT_WAITS = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_hfep.sensors.endpoint import HuggingFaceEndpointSensor

    with DAG("hfep_concurrent_waits", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        for i in range(6):
            HuggingFaceEndpointSensor(task_id=f"wait_{i}", endpoint_name=f"wait-{i}", poke_interval=1, timeout=300, start_from_trigger=True)
    """
)


def triggerer(scratch: Path) -> str:
    """
    Six waits at once in the real triggerer (`airflow standalone`), where connection lookups race.

    On Airflow before 3.3.2 a connection lookup that masks its secrets synchronously on the triggerer's
    event loop fails while another is in flight (``DeadlockImminentError``): six sensors started in the
    triggerer together are six lookups in flight at once.
    """
    sys.path.insert(0, str(Path(__file__).parents[2]))
    from airflow_provider_hfep.emulator import Emulator

    from tests.system.standalone import Standalone

    dags = scratch / "concurrent-dags"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "hfep_concurrent_waits.py").write_text(CONCURRENT_WAITS)
    names = [f"wait-{i}" for i in range(6)]
    with Emulator(deploy_seconds=1) as cloud:
        for name in names:
            cloud.seed_endpoint(name, state="initializing")  # held there until the test moves it
        # In the metadata database, not in an environment variable: a lookup then goes through the
        # triggerer's supervisor, as most users' connections do (and as the race needs).
        conn = json.loads(cloud.airflow_connection())
        with Standalone(scratch / "standalone-home", dags) as airflow:
            airflow.api(
                "POST",
                "/connections",
                json={
                    "connection_id": "hf_inference_endpoints_default",
                    "conn_type": conn["conn_type"],
                    "host": conn["host"],
                    "password": conn["password"],
                    "extra": json.dumps(conn["extra"]),
                },
            )
            run_id = airflow.trigger("hfep_concurrent_waits")

            def looks(name: str) -> int:
                return sum(1 for r in cloud.requests("management") if r["path"].endswith(f"/{name}"))

            deadline = time.monotonic() + 240
            while not (
                set(airflow.task_states("hfep_concurrent_waits", run_id).values()) == {"deferred"}
                and all(looks(name) >= 2 for name in names)  # the worker's look, then the trigger's
            ):
                failed = [
                    t
                    for t, s in airflow.task_states("hfep_concurrent_waits", run_id).items()
                    if s == "failed"
                ]
                assert not failed, airflow.task_states("hfep_concurrent_waits", run_id)
                assert time.monotonic() < deadline, airflow.task_states("hfep_concurrent_waits", run_id)
                time.sleep(0.5)

            # Airflow's LocalExecutor reports a deferred try's exit seconds late, and marks a wait that
            # ended before that report failed ("state changed externally"): let every report land.
            def reported(task_id: str) -> bool:
                line = f"Received executor event with state success for task instance TaskInstanceKey(dag_id='hfep_concurrent_waits', task_id='{task_id}'"
                return line in airflow.log_path.read_text(errors="replace")

            queued = [
                ti["task_id"]
                for ti in airflow.task_instances("hfep_concurrent_waits", run_id)
                if ti["queued_when"]
            ]
            while not all(reported(task_id) for task_id in queued):
                assert time.monotonic() < deadline, [t for t in queued if not reported(t)]
                time.sleep(0.5)
            for name in names:
                cloud.set_state(name, "running")
            while airflow.run_state("hfep_concurrent_waits", run_id) not in ("success", "failed"):
                assert time.monotonic() < deadline, airflow.task_states("hfep_concurrent_waits", run_id)
                time.sleep(0.5)
            states = airflow.task_states("hfep_concurrent_waits", run_id)
            logs = "".join(
                p.read_text(errors="replace")
                for p in (scratch / "standalone-home").rglob("*.log")
                if p.is_file()
            )
    assert set(states.values()) == {"success"}, states
    assert "DeadlockImminentError" not in logs
    assert "Trigger failure" not in logs
    from airflow_provider_hfep._compat import AIRFLOW_V_3_3_PLUS

    # start_from_trigger is honoured by Airflow's scheduler from 3.3; before, the sensors start on a worker
    assert len(queued) == (0 if AIRFLOW_V_3_3_PLUS else 6), queued
    return (
        f"6 waits deferred together ({6 - len(queued)} started in the triggerer, no worker first), "
        "all success; no DeadlockImminentError"
    )


UI_PROBE = textwrap.dedent(
    """
    import json, logging, os
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("airflow_provider_hfep.ui.plugin").addHandler(handler)
    logging.getLogger("airflow_provider_hfep.ui.plugin").setLevel(logging.INFO)
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient
    from airflow_provider_hfep.emulator import Emulator
    from airflow_provider_hfep.ui.plugin import URL_PREFIX
    found = {"log": records}
    with Emulator(deploy_seconds=30) as cloud:
        os.environ["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        cloud.seed_endpoint("ui-probe", state="paused")
        app = create_app()
        found["mounted"] = any(getattr(route, "path", None) == URL_PREFIX for route in app.routes)
        if found["mounted"]:
            client = TestClient(app, base_url="http://localhost")
            found["anonymous"] = client.get(URL_PREFIX + "/").status_code
            token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="ADMIN"))
            client.headers["authorization"] = "Bearer " + token
            page = client.get(URL_PREFIX + "/")
            found["page"] = [page.status_code, 'data-endpoint="ui-probe"' in page.text]
            acted = client.post(
                URL_PREFIX + "/endpoints/demo/ui-probe/resume",
                data={"conn": "hf_inference_endpoints_default"},
                headers={"origin": "http://localhost"},
                follow_redirects=False,
            )
            found["resume"] = [acted.status_code, cloud.state("ui-probe")]
    print(json.dumps(found))
    """
)


WINDOW_AROUND_A_LOOP = textwrap.dedent(
    """
    import pendulum
    from airflow.sdk import DAG, task_group
    from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
    from airflow_provider_hfep.window import endpoint_window

    with DAG("hfep_window_around_a_loop", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        with endpoint_window("loop-endpoint", poke_interval=0.2, max_runtime=3600):

            @task_group
            def rounds():
                HuggingFaceEndpointInferenceOperator(
                    task_id="infer", endpoint_name="loop-endpoint", task="text-generation", inputs=["a", "b"]
                )

            rounds.loop(max_iterations=3)
    """
)


def ui_page(scratch: Path) -> str:
    """The page's app in the API server's app (3.1+): mounted, and behind Airflow's auth; on 3.0 a log line."""
    from airflow_provider_hfep._compat import AIRFLOW_V_3_1_PLUS

    home = scratch / "ui-home"
    env = {**os.environ, "AIRFLOW_HOME": str(home)}
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        [sys.executable, "-c", UI_PROBE], env=env, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout.strip().splitlines()[-1])
    if AIRFLOW_V_3_1_PLUS:
        assert found["mounted"], found
        assert found["anonymous"] == 401, found  # no session: refused before any work
        assert found["page"] == [200, True], found  # an admin's page lists the emulator's endpoint
        assert found["resume"][0] == 303, found
        assert found["resume"][1] != "paused", found  # the page's Resume reached the API
        return "mounted, 401 without a session; an admin's page lists the endpoint, Resume resumes it"
    assert not found["mounted"], found
    assert any("needs Airflow 3.1" in line for line in found["log"]), found
    return "not mounted on 3.0, and the API server says so once"


RESCHEDULE_ON_CAPACITY = textwrap.dedent(
    """
    from datetime import timedelta

    import pendulum
    from airflow.sdk import DAG
    from airflow_provider_hfep.operators.endpoint import HuggingFaceCreateEndpointOperator
    from airflow_provider_hfep.retry_policies import reschedule_on_capacity

    with DAG("hfep_reschedule_on_capacity", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
        HuggingFaceCreateEndpointOperator(
            task_id="create",
            endpoint_name="busy-endpoint",
            repository="openai-community/gpt2",
            framework="pytorch",
            task="text-generation",
            accelerator="gpu",
            vendor="aws",
            region="us-east-1",
            instance_type="nvidia-l4",
            instance_size="x1",
            poll_interval=0.2,
            retry_policy=reschedule_on_capacity(every=timedelta(seconds=1), give_up_after=timedelta(minutes=5)),
        )
    """
)


def airflow_3_4(scratch: Path) -> str | None:
    """
    What Airflow 3.4 adds, used by the provider; ``None`` before 3.4.

    Task loops: a loop inside a window runs every iteration on one resume and is closed once; a window
    inside a loop is refused at parse time, saying why. Retry policies: a create refused for capacity
    is rescheduled (no retry used) and goes through once the quota frees.
    """
    from airflow_provider_hfep._compat import AIRFLOW_V_3_4_PLUS

    if not AIRFLOW_V_3_4_PLUS:
        return None
    from airflow.sdk import DAG, task_group

    from airflow_provider_hfep.emulator import Emulator
    from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator
    from airflow_provider_hfep.window import endpoint_window

    with DAG("hfep_window_inside_a_loop", schedule=None):

        @task_group
        def body():
            with endpoint_window("loop-endpoint"):
                HuggingFaceEndpointInferenceOperator(
                    task_id="infer", endpoint_name="loop-endpoint", task="text-generation", inputs=["a"]
                )

        try:
            body.loop(max_iterations=2)
        except ValueError as exc:
            refused = str(exc)
        else:
            raise AssertionError("a window inside a task loop was accepted")
    assert "inside the task loop 'body'" in refused, refused
    assert "put the loop inside the window" in refused, refused

    dags = scratch / "dags-3.4"
    dags.mkdir(parents=True, exist_ok=True)
    (dags / "hfep_window_around_a_loop.py").write_text(WINDOW_AROUND_A_LOOP)
    (dags / "hfep_reschedule_on_capacity.py").write_text(RESCHEDULE_ON_CAPACITY)
    bag = _dag_bag(dags)
    assert not bag.import_errors, bag.import_errors
    infer = bag.dags["hfep_window_around_a_loop"].get_task("endpoint_window.rounds.infer")
    assert infer.window_budget, "the window's caps did not reach the inference task inside the loop"
    airflow = Path(sys.executable).with_name("airflow")
    home = scratch / "home-3.4"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    subprocess.run([str(airflow), "db", "migrate"], env=env, check=True, capture_output=True)
    with Emulator(deploy_seconds=0.5, cold_start_seconds=0.2, latency_ms=5) as cloud:
        env["AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT"] = cloud.airflow_connection()
        cloud.seed_endpoint("loop-endpoint", state="paused")
        output = _dags_test(airflow, env, "hfep_window_around_a_loop", scratch)
        calls = [(r["method"], r["path"]) for r in cloud.requests("management")]
        resumes = [path for method, path in calls if method == "POST" and path.endswith("/resume")]
        pauses = [path for method, path in calls if method == "POST" and path.endswith("/pause")]
        answered = len(cloud.requests("inference"))
        assert len(resumes) == 1, calls
        assert answered == 3 * 2, f"{answered} inference requests for 3 rounds of 2 inputs"
        assert cloud.state("loop-endpoint") == "paused"
        assert "resume left no result" not in output, "an iteration could not read the window's caps"
        iterations = _task_states(env, "hfep_window_around_a_loop", "endpoint_window.rounds.infer")
        assert iterations == ["success"] * 3, iterations

        # No nvidia-l4 quota left: the create is refused before asking, rescheduled, and once the
        # quota frees (after the first refusal, seen in the metadata database) it goes through.
        cloud.set_quota("demo", "aws", "nvidia-l4", 0)
        database = home / "airflow.db"
        query = "SELECT state, try_number FROM task_instance WHERE dag_id = 'hfep_reschedule_on_capacity'"
        freed, done = threading.Event(), threading.Event()

        def free_the_quota_once_rescheduled() -> None:
            while not done.is_set():
                states = [row[0] for row in sqlite3.connect(database).execute(query).fetchall()]
                if "up_for_reschedule" in states:
                    cloud.set_quota("demo", "aws", "nvidia-l4", 4)
                    freed.set()
                    return
                time.sleep(0.2)

        watcher = threading.Thread(target=free_the_quota_once_rescheduled, daemon=True)
        watcher.start()
        try:
            _dags_test(airflow, env, "hfep_reschedule_on_capacity", scratch)
        finally:
            done.set()
            watcher.join()
        assert freed.is_set(), "the create was never rescheduled"
        [(state, try_number)] = sqlite3.connect(database).execute(query).fetchall()
        assert (state, try_number) == ("success", 1), (state, try_number)
        assert cloud.state("busy-endpoint") == "running"
    return (
        f"window around a 3-round loop: 1 resume, {answered} answers, {len(pauses)} pause, endpoint paused; "
        "window inside a loop refused; a create refused for capacity rescheduled, then created on try 1"
    )


def _dags_test(airflow: Path, env: dict[str, str], dag_id: str, scratch: Path) -> str:
    """`airflow dags test` of a DAG, which must end in success; its output."""
    done = subprocess.run(
        [str(airflow), "dags", "test", dag_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    (scratch / f"{dag_id}.log").write_text(output)
    assert done.returncode == 0, output[-3000:]
    state = _last_run_state(env, dag_id)
    assert state == "success", f"{dag_id} ended {state}: {output[-3000:]}"
    return output


def _task_states(env: dict[str, str], dag_id: str, task_id: str) -> list[str]:
    """The states of every instance of a task in the last run (one per loop iteration or map index)."""
    probe = (
        "import sys; from airflow.models import DagRun, TaskInstance; from airflow.utils.session import create_session\n"
        "with create_session() as session:\n"
        "    run = sorted(DagRun.find(dag_id=sys.argv[1]), key=lambda r: r.start_date)[-1]\n"
        "    tis = session.query(TaskInstance).filter_by(dag_id=sys.argv[1], run_id=run.run_id, task_id=sys.argv[2])\n"
        "    print(' '.join(sorted(str(ti.state) for ti in tis)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, dag_id, task_id], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1].split()


def _last_run_state(env: dict[str, str], dag_id: str) -> str:
    probe = (
        "import sys; from airflow.models import DagRun; "
        "runs = DagRun.find(dag_id=sys.argv[1]); "
        "print(sorted(runs, key=lambda r: r.start_date)[-1].state)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, dag_id], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--skip", action="append", default=[], help="a check not to run here")
    args = parser.parse_args()
    import airflow

    checks: dict[str, Callable[[], str | None]] = {
        "registered": registered,
        "connection_form": connection_form,
        "imports": every_module_imports,
        "examples_parse": lambda: examples_parse(args.examples),
        "examples_run": lambda: examples_run(args.examples, args.scratch),
        "triggerer": lambda: triggerer(args.scratch),
        "ui_page": lambda: ui_page(args.scratch),
        "airflow_3_4": lambda: airflow_3_4(args.scratch),
    }
    report: dict[str, Any] = {"airflow": airflow.__version__, "python": sys.version.split()[0]}
    failed = False
    for name, check in checks.items():
        if name in args.skip:
            continue
        try:
            detail = check()
            if detail is not None:  # None: the check has nothing to look at on this Airflow
                report[name] = {"ok": True, "detail": detail}
        except Exception as exc:
            failed = True
            report[name] = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"[:2000]}
            traceback.print_exc()
    print(json.dumps(report))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
