"""
:class:`Emulator`: start ``hfep-emulator`` in a child process and drive it from Python.

The child runs in its own process group (stopped on exit). Its control API is always behind a token
this object makes and hands over in the child's environment. It imports nothing from the provider's
client layer.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_hfep.emulator.settings import CONTROL_TOKEN_ENV, from_keywords, to_argv

if TYPE_CHECKING:
    from collections.abc import Iterable

READY_PREFIX = "HFEP_EMULATOR_URL="


class Emulator:
    """
    Start and drive an emulator process.

    :param settings: how the emulated cloud behaves: any field of
        :class:`~airflow_provider_hfep.emulator.settings.Settings` (``deploy_seconds=0.5``,
        ``users=["demo:hf_demo_token"]``, ``quotas=["demo:aws:nvidia-l4:4"]``...). The first user
        is the default one.
    :param faults: ``SCOPE:KIND:RATE`` strings injected from the start.
    :param seed: seed of the fault dice.
    :param host: address to bind, loopback by default.
    :param port: port to bind; 0 (default) picks a free one.
    :param startup_timeout: seconds to wait for the process to be ready.
    """

    def __init__(
        self,
        *,
        faults: Iterable[str] = (),
        seed: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
        **settings: Any,
    ) -> None:
        self.settings = from_keywords(**settings)
        self.users = [str(user) for user in self.settings.users]
        self.user, self.token = self.settings.users[0].name, self.settings.users[0].token
        self._argv = [
            sys.executable,
            "-m",
            "airflow_provider_hfep.emulator",
            "--host",
            host,
            "--port",
            str(port),
        ]
        for fault in faults:
            self._argv += ["--fault", fault]
        if seed is not None:
            self._argv += ["--seed", str(seed)]
        self._argv += to_argv(self.settings)
        # The control API reads every request and resets the cloud: only this object may call it.
        self._control_token = secrets.token_urlsafe(24)
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._control: httpx.Client | None = None
        self.url = ""

    def __repr__(self) -> str:
        return f"Emulator(url={self.url!r}, user={self.user!r})"

    # -- process -------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start the process and wait for its ``HFEP_EMULATOR_URL=`` line; fail with its own error if none comes."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", CONTROL_TOKEN_ENV: self._control_token}
        process = self._process = subprocess.Popen(
            self._argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        line: list[str] = []
        stdout = process.stdout
        if stdout is None:
            raise RuntimeError("hfep-emulator: no stdout to read its address from")
        reader = threading.Thread(target=lambda: line.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self._startup_timeout)
        if not line or not line[0].startswith(READY_PREFIX):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)  # it is ending (its stdout closed): let it finish saying why
            exited = process.poll() is not None
            errors = process.stderr.read() if exited and process.stderr is not None else ""
            self.stop()
            said = line[0].strip() if line and line[0].strip() else "no address line"
            raise RuntimeError(
                f"hfep-emulator did not start ({said}; exit status {process.returncode}): {errors[-2000:]}"
            )
        self.url = line[0].strip()[len(READY_PREFIX) :]
        self._control = httpx.Client(
            base_url=self.url, timeout=30.0, headers={"x-emulator-control-token": self._control_token}
        )
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
        availability: list[dict[str, Any]] | None = None,
        after: int = 0,
        times: int = 1,
    ) -> None:
        """
        Script a turn of events: once ``action`` succeeds on ``endpoint``, change what happens next.

        Applied by the emulator in the very request that does ``action`` (``get``, ``create``,
        ``update``, ``resume``, ``pause``, ``scale-to-zero``, ``delete``), so a test needs no thread
        watching the request log. The rule forces ``state`` (with ``message``), replaces the injected
        ``faults``, makes the endpoint ``vanish``, or changes the cloud's ``availability`` (a list
        of :meth:`set_availability`'s arguments as ``{vendor, region, instanceType, status,
        in_seconds}``); it lets ``after`` matching calls pass first and
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
            "availability": availability,
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

    def set_availability(
        self, vendor: str, region: str, instance_type: str, status: str, *, in_seconds: float = 0
    ) -> None:
        """
        Say how much of ``instance_type`` the region has: ``available``, ``low_availability`` or ``not_available``.

        The hardware listing shows it; a deployment on ``low_availability`` hardware stays ``pending``
        (no replica starting, the message saying why) until it changes; one on ``not_available``
        hardware is refused with the service's capacity message. With ``in_seconds`` the change
        happens that much later: a night whose capacity comes back (or goes) at a given time.
        """
        self._call(
            "PUT",
            "/availability",
            json={
                "vendor": vendor,
                "region": region,
                "instanceType": instance_type,
                "status": status,
                "in_seconds": in_seconds,
            },
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
