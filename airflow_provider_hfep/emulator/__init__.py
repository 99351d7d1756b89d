"""
A local emulator of the Hugging Face cloud, for local development and for tests (yours and ours).

.. code-block:: python

    from airflow_provider_hfep.emulator import Emulator

    with Emulator(deploy_seconds=0.5) as cloud:
        cloud.url  # management API, Hub and data planes, all on 127.0.0.1
        cloud.token  # a valid token ("hf_demo_token" for user "demo")
        cloud.airflow_connection()  # the JSON of an Airflow connection pointing at it

It runs ``hfep-emulator`` in a child process (its own process group, stopped on exit) and talks to
its control API under ``/_emulator``. It imports nothing from the provider's client layer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Emulator"]

READY_PREFIX = "HFEP_EMULATOR_URL="


class Emulator:
    """
    Start and drive an emulator process.

    :param users: ``NAME:TOKEN[:ORG,...]`` strings; the first is the default user. Default: ``demo:hf_demo_token``.
    :param deploy_seconds: pending + initializing time of a deploy, resume or update.
    :param cold_start_seconds: wake-up time of a scaled-to-zero endpoint.
    :param update_lag_seconds: how long reads still show the old state after an update.
    :param latency_ms: time each inference request takes.
    :param item_latency_ms: extra time per input a request carries.
    :param capacity: inference requests in flight per replica before 429.
    :param max_client_batch_size: inputs a TEI endpoint takes in one request before answering 413.
    :param scale_up_seconds: autoscaling: seconds of load before a replica is added (up to maxReplica).
    :param scale_down_seconds: autoscaling: seconds idle before an added replica is removed.
    :param faults: ``SCOPE:KIND:RATE`` strings injected from the start.
    :param seed: seed of the fault dice.
    :param quotas: ``NAMESPACE:VENDOR:INSTANCE_TYPE:MAX`` strings: accelerators a namespace may hold.
    :param default_quota: accelerators of each type a namespace may hold otherwise.
    :param logs_v3: serve the v3 (searchable) logs; without, they answer 501.
    :param page_size: endpoints per listing page when the caller gives no ``limit``.
    :param host: address to bind, loopback by default.
    :param port: port to bind; 0 (default) picks a free one.
    :param startup_timeout: seconds to wait for the process to be ready.
    """

    def __init__(
        self,
        *,
        users: Iterable[str] = ("demo:hf_demo_token",),
        deploy_seconds: float = 3.0,
        cold_start_seconds: float = 2.0,
        update_lag_seconds: float = 0.3,
        latency_ms: float = 20.0,
        item_latency_ms: float = 0.0,
        capacity: int = 32,
        max_client_batch_size: int = 32,
        scale_up_seconds: float = 5.0,
        scale_down_seconds: float = 60.0,
        faults: Iterable[str] = (),
        seed: int | None = None,
        quotas: Iterable[str] = (),
        default_quota: int = 64,
        logs_v3: bool = True,
        page_size: int = 20,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
    ) -> None:
        self.users = list(users)
        self.user, self.token = self.users[0].split(":")[:2]
        self._argv = [
            sys.executable,
            "-m",
            "airflow_provider_hfep.emulator",
            "--host",
            host,
            "--port",
            str(port),
        ]
        for user in self.users:
            self._argv += ["--user", user]
        self._argv += [
            "--deploy-seconds",
            str(deploy_seconds),
            "--cold-start-seconds",
            str(cold_start_seconds),
            "--update-lag-seconds",
            str(update_lag_seconds),
            "--latency-ms",
            str(latency_ms),
            "--item-latency-ms",
            str(item_latency_ms),
            "--capacity",
            str(capacity),
            "--max-client-batch-size",
            str(max_client_batch_size),
            "--scale-up-seconds",
            str(scale_up_seconds),
            "--scale-down-seconds",
            str(scale_down_seconds),
        ]
        for fault in faults:
            self._argv += ["--fault", fault]
        if seed is not None:
            self._argv += ["--seed", str(seed)]
        for quota in quotas:
            self._argv += ["--quota", quota]
        self._argv += ["--default-quota", str(default_quota), "--page-size", str(page_size)]
        if not logs_v3:
            self._argv.append("--no-logs-v3")
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._control: httpx.Client | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r}, user={self.user!r})"

    # -- process -------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start the process and wait for its ``HFEP_EMULATOR_URL=`` line."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            self._argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        line: list[str] = []
        stdout = self._process.stdout
        if stdout is None:
            raise RuntimeError("hfep-emulator: no stdout to read its address from")
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._startup_timeout)
        if not line or not line[0].startswith(READY_PREFIX):
            self.stop()
            errors = self._process.stderr.read() if self._process.stderr else ""
            raise RuntimeError(
                f"hfep-emulator did not start: {line[0] if line else 'no output'} {errors[-2000:]}"
            )
        self.url = line[0].strip()[len(READY_PREFIX) :]
        self._control = httpx.Client(base_url=self.url, timeout=30.0)
        return self

    def stop(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after 10 s)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()

    def restart(self) -> Emulator:
        """Stop the process and start a new one at the same address: the cloud forgets every endpoint."""
        port = self.url.rsplit(":", 1)[1]
        self.stop()
        self._argv[self._argv.index("--port") + 1] = port
        return self.start()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # -- where things are ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Base of the management API (the connection's host); the client adds ``/v2``."""
        return self.url

    @property
    def hub_url(self) -> str:
        """Base of the Hub API (``/api/whoami-v2``)."""
        return self.url

    def endpoint_url(self, name: str, namespace: str | None = None) -> str:
        """Return the data-plane URL the emulator hands out for an endpoint."""
        return f"{self.url}/endpoints/{namespace or self.user}/{name}"

    def airflow_connection(self, **extra: Any) -> str:
        """
        JSON of an ``hf_inference_endpoints`` Airflow connection to this emulator.

        Use it as ``AIRFLOW_CONN_HF_INFERENCE_ENDPOINTS_DEFAULT`` (or any ``AIRFLOW_CONN_<ID>``).
        """
        return json.dumps(
            {
                "conn_type": "hf_inference_endpoints",
                "host": self.url,
                "password": self.token,
                "extra": {
                    "hub_url": self.url,
                    "catalog_url": self.catalog_url,
                    "namespace": self.user,
                    **extra,
                },
            }
        )

    # -- control API ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._control is None:
            raise RuntimeError("the emulator is not running")
        response = self._control.request(method, f"/_emulator{path}", **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        """Forget every endpoint, fault, scripted rule and logged request."""
        self._call("POST", "/reset")

    def seed_endpoint(
        self, name: str, *, state: str = "running", namespace: str | None = None, **body: Any
    ) -> dict[str, Any]:
        """Put an endpoint in place directly in ``state``: a TGI text-generation one unless ``body`` overrides it."""
        payload = {
            "name": name,
            "type": "authenticated",
            "provider": {"vendor": "aws", "region": "us-east-1"},
            "compute": {
                "accelerator": "gpu",
                "instanceType": "nvidia-l4",
                "instanceSize": "x1",
                "scaling": {"minReplica": 1, "maxReplica": 1},
            },
            "model": {
                "repository": "openai-community/gpt2",
                "framework": "pytorch",
                "task": "text-generation",
                "image": {"tgi": {"url": "ghcr.io/huggingface/text-generation-inference:3.3.4"}},
            },
        }
        payload.update(body)
        return self._call("POST", f"/endpoints/{namespace or self.user}", json={**payload, "state": state})

    def set_state(
        self, name: str, state: str, message: str | None = None, *, namespace: str | None = None
    ) -> dict[str, Any]:
        """Force an endpoint into ``state`` now (e.g. ``failed`` with the server's message)."""
        return self._call(
            "POST",
            f"/endpoints/{namespace or self.user}/{name}/state",
            json={"state": state, "message": message},
        )

    def on(
        self,
        action: str,
        endpoint: str | None = None,
        *,
        state: str | None = None,
        message: str | None = None,
        faults: list[dict[str, Any]] | None = None,
        vanish: bool = False,
        after: int = 0,
        times: int = 1,
    ) -> None:
        """
        Script a turn of events: once ``action`` succeeds on ``endpoint``, change what happens next.

        Applied by the emulator in the very request that does ``action`` (``get``, ``create``,
        ``update``, ``resume``, ``pause``, ``scale-to-zero``, ``delete``), so a test needs no thread
        watching the request log. The rule forces ``state`` (with ``message``), replaces the injected
        ``faults``, or makes the endpoint ``vanish``; it lets ``after`` matching calls pass first and
        applies to ``times`` of them. Adds to the rules already set; :meth:`reset` clears them.
        Example, a deployment that fails as soon as it is resumed::

            cloud.on("resume", "batch-endpoint", state="failed", message="Out of GPU capacity")
        """
        rule = {
            "on": action,
            "endpoint": endpoint,
            "state": state,
            "message": message,
            "faults": faults,
            "vanish": vanish,
            "after": after,
            "times": times,
        }
        self._call("POST", "/rules", json=rule)

    def rules(self) -> list[dict[str, Any]]:
        """Return the scripted rules, each with how often it ``fired``."""
        return self._call("GET", "/rules")["rules"]

    def set_faults(self, faults: list[dict[str, Any]], seed: int | None = None) -> None:
        """Replace the injected faults (see :class:`airflow_provider_hfep.emulator.faults.Fault`)."""
        self._call("PUT", "/faults", json={"faults": faults, "seed": seed})

    def clear_faults(self) -> None:
        self.set_faults([])

    def requests(self, scope: str | None = None) -> list[dict[str, Any]]:
        """Return the request log (authorization values redacted), optionally of one scope."""
        params = {"scope": scope} if scope else None
        return self._call("GET", "/requests", params=params)["requests"]

    def clear_requests(self) -> None:
        self._call("DELETE", "/requests")

    def billing(self, name: str, *, namespace: str | None = None) -> dict[str, float]:
        """Return the billing meter of an endpoint: billable_seconds, replica_seconds, requests."""
        return self._call("GET", f"/endpoints/{namespace or self.user}/{name}/billing")

    def load(self, name: str, *, namespace: str | None = None) -> dict[str, int]:
        """Return the endpoint's data-plane load: ``in_flight`` requests and its ``capacity``."""
        return self._call("GET", f"/endpoints/{namespace or self.user}/{name}/load")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """
        Send one request to the emulated service (management API or a data plane) with the user's token.

        ``path`` is absolute on the emulator, e.g. ``/v2/endpoint/demo/my-endpoint``. The answer is
        returned whatever its status.
        """
        if self._control is None:
            raise RuntimeError("the emulator is not running")
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return self._control.request(method, path, headers=headers, **kwargs)

    def endpoint(self, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        """Return an endpoint as the management API answers it, ``None`` if it does not exist."""
        response = self.api("GET", f"/v2/endpoint/{namespace or self.user}/{name}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def state(self, name: str, *, namespace: str | None = None) -> str | None:
        """Return an endpoint's state (``running``, ``paused``, ...), ``None`` if it does not exist."""
        endpoint = self.endpoint(name, namespace=namespace)
        return None if endpoint is None else endpoint["status"]["state"]

    def set_quota(self, namespace: str, vendor: str, instance_type: str, maximum: int) -> None:
        """Let ``namespace`` hold at most ``maximum`` accelerators of ``instance_type`` at ``vendor``."""
        self._call(
            "PUT",
            f"/quotas/{namespace}",
            json={"vendor": vendor, "instanceType": instance_type, "max": maximum},
        )

    def set_logs_v3(self, enabled: bool) -> None:
        """Serve the v3 (searchable) logs, or answer them 501 as endpoints without log search do."""
        self._call("PUT", "/logs", json={"v3": enabled})

    @property
    def catalog_url(self) -> str:
        """Base of the model catalog API (the connection extra ``catalog_url``)."""
        return f"{self.url}/api/v1/catalog"

    def set_namespace_billing(self, namespace: str, enabled: bool) -> None:
        """Make a namespace refuse (or accept again) management calls as if it had no payment method."""
        self._call("PUT", f"/namespaces/{namespace}", json={"billing": enabled})
