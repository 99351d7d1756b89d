"""Airflow's production topology on one machine, for system tests: Redis as the Celery broker, PostgreSQL
as the metadata database and Celery's result backend, and every Airflow component as a process of its
own (api-server, scheduler, dag-processor, two triggerers, two Celery workers).

Everything listens on 127.0.0.1 on free ports and runs in process groups of its own, stopped by group at
the end: nothing of a machine's own Redis or PostgreSQL service is used or touched. The Debian packages
(binaries only) come from ``scripts/services.sh``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from base64 import b64encode
from pathlib import Path
from typing import Any, Self

from tests.system.standalone import Standalone, free_port

#: the env var a worker's hostname callable reads (see :func:`worker_hostname`)
WORKER_NAME_ENV = "HFEP_CELERY_WORKER_NAME"
REPO = Path(__file__).parents[2]


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the test's workers: each stands for a machine of its own.

    On one machine every worker would report the same host name; with this, a task instance's
    ``hostname`` (REST API) names the worker that ran it (``w1``, ``w2``).
    """
    return os.environ[WORKER_NAME_ENV]


def _sigkill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Service:
    """One server process in its own process group, stopped by group.

    :param log_path: where its output goes.
    """

    #: signal of a fast, clean stop (PostgreSQL: SIGINT; SIGTERM waits for every client to leave)
    stop_signal = signal.SIGTERM

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:
            return subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )

    def start(self, timeout: float = 60) -> Self:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()  # what it had started
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.log_path.stem} exited: {self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.log_path.stem} not ready after {timeout} s")
            time.sleep(0.1)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, self.stop_signal)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


class Redis(Service):
    """A throw-away ``redis-server`` (no persistence) on a free port of 127.0.0.1.

    :param tmpdir: its working directory and log.
    """

    def __init__(self, tmpdir: Path) -> None:
        super().__init__(tmpdir / "redis.log")
        self.dir = tmpdir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> Self:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise RuntimeError("redis-server is not installed: run scripts/services.sh (as root)")
        self.process = self.spawn(
            [redis_server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + ["--appendonly", "no", "--dir", str(self.dir)]
        )
        self.wait_ready(timeout)
        return self

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def ready(self) -> bool:
        import redis

        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


class Postgres(Service):
    """A throw-away PostgreSQL cluster on a free port of 127.0.0.1 (fsync off), with a database
    ``airflow`` owned by a user ``airflow`` that logs in with a password.

    Run as root, the server runs as the ``postgres`` system user (PostgreSQL refuses root), in a data
    directory of its own under the system's temporary directory (pytest's are private to root),
    removed at stop.

    :param tmpdir: where its log goes.
    """

    stop_signal = signal.SIGINT
    user, password, database = "airflow", "airflow-test-password", "airflow"

    def __init__(self, tmpdir: Path) -> None:
        super().__init__(tmpdir / "postgres.log")
        self.root = Path(tempfile.mkdtemp(prefix="hfep-postgres-"))
        self.data, self.sockets = self.root / "data", self.root / "sockets"
        self.url = f"postgresql+psycopg2://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    @staticmethod
    def bindir() -> Path:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
        if not found:
            raise RuntimeError("PostgreSQL is not installed: run scripts/services.sh (as root)")
        return Path(found[-1]).parent

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a PostgreSQL binary as the ``postgres`` user when we are root."""
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": [], "cwd": self.root}

    def start(self, timeout: float = 60) -> Self:
        bindir = self.bindir()
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        with open(self.log_path, "ab") as log:
            subprocess.run(
                [str(bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8", "--no-sync"]
                + ["--auth-local=trust", "--auth-host=scram-sha-256", "--locale=C.UTF-8"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                **self._as_owner(),
            )
        settings = {
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "300",
        }
        self.process = self.spawn(
            [str(bindir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.sockets)]
            + [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
            **self._as_owner(),
        )
        self.wait_ready(timeout)
        connection = self._superuser()  # not `with connection`: psycopg2 makes that a transaction
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE USER {self.user} PASSWORD %s", (self.password,))
                cursor.execute(f"CREATE DATABASE {self.database} OWNER {self.user}")
        finally:
            connection.close()
        return self

    def _superuser(self) -> Any:
        import psycopg2  # type: ignore[import-untyped]  # no stubs in the lock (types-psycopg2)

        connection = psycopg2.connect(
            host=str(self.sockets), port=self.port, user="postgres", dbname="postgres", connect_timeout=5
        )
        connection.autocommit = True
        return connection

    def ready(self) -> bool:
        import psycopg2

        try:
            self._superuser().close()
        except psycopg2.OperationalError:
            return False
        return True

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.root, ignore_errors=True)


class CeleryAirflow(Standalone):
    """Airflow with the CeleryExecutor, each component a process (group) of its own, as in production.

    ``self.process`` is the api-server; the scheduler, the dag-processor, the triggerers and the workers
    are ``self.extra`` (stopped by :meth:`Standalone.stop`). Worker ``wN`` runs as Celery node
    ``wN@<host>`` and reports itself as host ``wN`` (see :func:`worker_hostname`).

    :param home: its AIRFLOW_HOME (created), shared by every component as a shared volume would be.
    :param dags_folder: the DAGs it runs.
    :param env: extra environment (connections, ...).
    :param redis: the broker.
    :param postgres: the metadata database, also Celery's result backend.
    """

    workers = ("w1", "w2")
    triggerers = 2
    concurrency = 2

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        env: dict[str, str] | None = None,
        *,
        redis: Redis,
        postgres: Postgres,
    ) -> None:
        super().__init__(home, dags_folder)
        self.worker_processes: dict[str, subprocess.Popen[bytes]] = {}  # the latest of each name
        self.env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": postgres.url,
                "AIRFLOW__CELERY__BROKER_URL": redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{postgres.url}",  # psycopg2 named: celery's default is psycopg 3
                # Workers reach the api-server's execution API; tokens it checks are signed by the
                # scheduler: one secret for every component (each would make its own otherwise).
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": b64encode(os.urandom(24)).decode(),
                "AIRFLOW__API__SECRET_KEY": b64encode(os.urandom(24)).decode(),
                "AIRFLOW__CORE__PARALLELISM": "8",
                **(env or {}),
            }
        )

    def start(self, timeout: float = 240) -> Self:
        self.migrate()
        self.process = self.start_component("api-server")
        self.extra.remove(self.process)  # the leader: stopped last, by Standalone.stop
        self.start_component("scheduler")
        self.start_component("dag-processor")
        for _ in range(self.triggerers):
            self.start_component("triggerer")  # each with a trigger log server port of its own
        for name in self.workers:
            self.start_worker(name)
        return self.wait_healthy(timeout)

    def ready(self) -> bool:
        """Every worker has said it is ready (Celery's ``<node> ready.``)."""
        return all(" ready." in self.worker_log(name) for name in self.workers)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        """Start Celery worker ``name`` (a new one, or one a test killed), with its own log server port."""
        process = self.start_component(
            "celery",
            "worker",
            f"--celery-hostname={name}@%h",
            f"--concurrency={self.concurrency}",
            env={
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
                WORKER_NAME_ENV: name,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), self.env.get("PYTHONPATH")])),
            },
        )
        self.worker_processes[name] = process
        return process

    def worker_log(self, name: str) -> str:
        return "".join(
            path.read_text(errors="replace")
            for path in self.home.glob(f"celery-worker---celery-hostname={name}@*")
        )

    # -- processes, for tests that kill them ---------------------------------------------------------

    def task_pids(self, ti_id: str) -> list[int]:
        """The process running task instance ``ti_id`` (the REST API's ``id``), on whichever worker.

        The task runner names itself ``airflow worker -- <id>``, in a session of its own.
        """
        return self.pids(f"airflow worker -- {ti_id}", any_group=True)

    def worker_of(self, pid: int) -> str | None:
        """The worker (``w1``...) that ``pid`` descends from, if any."""
        for name, process in self.worker_processes.items():
            if pid in self.with_descendants([process.pid]):
                return name
        return None

    def kill_task(self, ti_id: str) -> tuple[str | None, list[int]]:
        """SIGKILL the process running task instance ``ti_id`` (its worker lives on): which worker, which pids."""
        pids = self.task_pids(ti_id)
        worker = self.worker_of(pids[0]) if pids else None
        _sigkill(pids)
        return worker, pids

    def kill_worker(self, name: str) -> list[int]:
        """SIGKILL worker ``name`` with every process it started (its task runners have sessions of their own),
        as when its machine dies. :meth:`start_worker` starts it again."""
        pids = self.with_descendants([self.worker_processes[name].pid])
        _sigkill(pids)
        self.worker_processes[name].wait(30)
        return pids

    def memory_mib(self) -> float:
        """Memory of every process of the stack: the sum of their proportional set sizes (a page shared by
        forked processes counted once in all)."""
        total = 0
        leaders = [p.pid for p in [self.process, *self.extra] if p is not None]
        for pid in self.with_descendants(leaders):
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += next(
                (int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")), 0
            )
        return total / 1024
