"""Run a real `airflow standalone` (api-server, scheduler, dag-processor, triggerer) for system tests
and benchmarks: its own AIRFLOW_HOME, free ports, a small parallelism, stopped by process group."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Self

import httpx

AIRFLOW = Path(sys.executable).with_name("airflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


class Standalone:
    """One `airflow standalone` process group.

    :param home: its AIRFLOW_HOME (created).
    :param dags_folder: the DAGs it runs.
    :param env: extra environment (connections, ...).
    """

    def __init__(self, home: Path, dags_folder: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PATH": f"{AIRFLOW.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # it spawns `airflow` components
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            **(env or {}),
        }
        self.env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.extra: list[subprocess.Popen[bytes]] = []  # components started beside it (a second triggerer...)
        self.http = httpx.Client(base_url=self.url, timeout=30)

    @property
    def log_path(self) -> Path:
        return self.home / "standalone.log"

    def migrate(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(AIRFLOW), "db", "migrate"], env=self.env, check=True, capture_output=True)

    def start(self, timeout: float = 300) -> Self:
        self.migrate()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(AIRFLOW), "standalone"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self.wait_healthy(timeout)

    def ready(self) -> bool:
        """Whether what the health endpoint does not report is up too (nothing here; Celery workers...)."""
        return True

    def wait_healthy(self, timeout: float) -> Self:
        """Wait until every component is healthy, then authenticate; stop everything if one exits or time runs out."""
        try:
            deadline = time.time() + timeout
            while time.time() < deadline:
                for process in [self.process, *self.extra]:
                    if process is not None and process.poll() is not None:
                        log = self.log_path if process is self.process else self.home
                        raise RuntimeError(f"{process.args!r} exited ({process.returncode}): see {log}")
                try:
                    health = self.http.get("/api/v2/monitor/health").json()
                    if self.ready() and all(
                        health.get(part, {}).get("status") == "healthy"
                        for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    ):
                        self._authenticate()
                        return self
                except (httpx.HTTPError, ValueError):
                    pass
                time.sleep(1)
            raise RuntimeError(f"airflow not healthy after {timeout} s: see the logs in {self.home}")
        except BaseException:
            self.stop()
            raise

    def _authenticate(self) -> None:
        """Use a token where the API asks for one (3.1 does even with all users admins)."""
        answer = self.http.get("/auth/token")
        if answer.is_success and "access_token" in answer.json():
            self.http.headers["authorization"] = f"Bearer {answer.json()['access_token']}"

    def start_component(self, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start another component (e.g. ``triggerer``) in its own process group, stopped with the rest.

        ``env``: variables of its own, over the stack's.
        """
        env = {**self.env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()), **(env or {})}
        log = open(self.home / f"{'-'.join(command)}-{len(self.extra)}.log", "wb")  # closed with the process
        process = subprocess.Popen(
            [str(AIRFLOW), *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.extra.append(process)
        return process

    def pids(self, text: str, *, any_group: bool = False) -> list[int]:
        """Processes of this stack (its group or an extra component's) whose command line contains ``text``.

        ``any_group``: look in every process group (a task's process has its own group): only for a
        ``text`` nothing else can contain, such as a task instance's id.
        """
        groups = {p.pid for p in [self.process, *self.extra] if p is not None}
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                if (any_group or os.getpgid(int(proc.name)) in groups) and text in (
                    proc / "cmdline"
                ).read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(proc.name))
            except (OSError, ProcessLookupError):
                continue
        return found

    @staticmethod
    def alive(pid: int) -> bool:
        """Whether a process runs (a zombie, dead but not yet reaped by its parent, does not)."""
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    @staticmethod
    def with_descendants(pids: list[int]) -> list[int]:
        """``pids`` and every process they started (a triggerer's trigger runner has a session of its own)."""
        parents: dict[int, int] = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
        found = list(pids)
        for pid in found:
            found += [child for child, parent in parents.items() if parent == pid and child not in found]
        return found

    def stop(self) -> None:
        # Every extra component's group, even one whose leader a test killed: its children (a
        # triggerer's log server) would outlive it otherwise.
        for extra in self.extra:
            if _group_alive(extra.pid):
                os.killpg(extra.pid, signal.SIGTERM)
                deadline = time.time() + 30
                while time.time() < deadline and _group_alive(extra.pid):
                    extra.poll()
                    time.sleep(0.2)
                if _group_alive(extra.pid):
                    os.killpg(extra.pid, signal.SIGKILL)
            extra.wait(10)
        self.http.close()
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        deadline = time.time() + 60
        while time.time() < deadline and _group_alive(process.pid):  # every component, not just the leader
            process.poll()
            time.sleep(0.5)
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- REST API ----------------------------------------------------------------------------------

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/api/v2{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.http.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                return
            time.sleep(1)
        raise RuntimeError(f"DAG {dag_id} never appeared: {self.http.get('/api/v2/importErrors').text}")

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})[
            "dag_run_id"
        ]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        items = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in items}

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
