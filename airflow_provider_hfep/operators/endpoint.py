"""
Lifecycle operators: create, update, pause, resume, scale to zero, delete.

All share one small base: the connection, the endpoint's name and namespace, the hook, the extra link,
and the wait (inline, or deferred to :class:`HuggingFaceEndpointStatusTrigger`; the same polling code
either way). Each returns the endpoint as a JSON-safe dict.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import MISSING
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_hfep._compat import conf, mask_secret
from airflow_provider_hfep.endpoints.arguments import check_choice, check_count, check_seconds
from airflow_provider_hfep.endpoints.costs import idle_stop_scaling
from airflow_provider_hfep.endpoints.errors import (
    CapacityError,
    ConflictError,
    EndpointsApiError,
    EndpointsError,
    EndpointWaitTimeoutError,
    InvalidEndpointArgumentError,
    NotFoundError,
)
from airflow_provider_hfep.endpoints.hardware import HardwareChoice, parse_hardware
from airflow_provider_hfep.endpoints.models import EndpointStatus, InferenceEndpoint
from airflow_provider_hfep.endpoints.payloads import (
    EndpointSpec,
    EndpointUpdate,
    check_has_changes,
    endpoint_arguments,
    validate_arguments,
    validate_endpoint_name,
    validate_namespace,
)
from airflow_provider_hfep.endpoints.waiting import DELETED, Outcome, WatchResult, raise_for_result
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.operators.fallback import (
    HardwareFallback,
    needs_move,
    start_index,
)
from airflow_provider_hfep.target import EndpointTarget, explain, final_verdicts, race_safe_retries
from airflow_provider_hfep.triggers.endpoint import (
    ON_KILL_ACTIONS,
    HuggingFaceEndpointsReadyTrigger,
    HuggingFaceEndpointStatusTrigger,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from airflow.sdk import Context

IF_EXISTS = ("fail", "reuse", "update")
IF_UPDATING = ("fail", "wait")
#: seconds a deployment may stay ``pending`` (no replica starting) before the next hardware choice
CAPACITY_TIMEOUT = 15 * 60
#: the XCom key of the hardware choices that failed so far, kept across a deferral of the same try
TRIED_KEY = "hardware_tried"


def task_instance_tag(ti: Any) -> str:
    """
    Name a task instance (not its try) in a tag: ``airflow-ti-`` and 16 hex digits.

    The create operator puts it on the endpoint it creates, so a retry of the same task instance
    recognises the endpoint its earlier try created (and another task does not). ``ti`` needs
    ``dag_id``, ``task_id``, ``run_id`` and ``map_index``.
    """
    identity = f"{ti.dag_id}/{ti.task_id}/{ti.run_id}/{ti.map_index}"
    return f"airflow-ti-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


class _EndpointArguments:
    """
    The endpoint's declared arguments as an operator takes them: signature, template fields, docstring.

    The declaration is :func:`~airflow_provider_hfep.endpoints.payloads.endpoint_arguments`.

    :param update: an update's arguments (every one optional, ``None`` meaning "unchanged").
    """

    def __init__(self, *, update: bool) -> None:
        self.declared = endpoint_arguments(update=update)
        self.names = [name for name, *_ in self.declared]
        #: what DAG authors template; every other argument is checked when the DAG is parsed
        self.templated = tuple(name for name, _, _, templated in self.declared if templated)

    def signed(self, init: Callable[..., None]) -> Callable[..., None]:
        """
        Give ``init`` the arguments as keyword parameters of its signature.

        Airflow fills parameters from ``default_args`` and refuses a missing required one by the
        signature: each argument is a parameter, though ``init`` takes them through ``**kwargs``.
        """
        own = inspect.signature(init)
        parameters = [p for p in own.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        declared = [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if default is MISSING else default,
            )
            for name, default, _, _ in self.declared
        ]
        init.__signature__ = own.replace(  # type: ignore[attr-defined]
            parameters=[*parameters, *declared, own.parameters["kwargs"]]
        )
        return init

    def take(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Take the endpoint's arguments out of an operator's keyword arguments, defaults filled in."""
        return {
            name: kwargs.pop(name) if name in kwargs else (None if default is MISSING else default)
            for name, default, _, _ in self.declared
        }

    def document(self, cls: type) -> type:
        """Add one ``:param:`` line per argument to the operator's docstring."""
        lines = [
            f":param {name}: {doc}{' (templated)' if templated else ''}"
            for name, _, doc, templated in self.declared
        ]
        doc = cls.__doc__ or ""
        head, _, tail = doc.partition("    :return:")
        cls.__doc__ = (
            head + "".join(f"    {line}\n" for line in lines) + ("    :return:" + tail if tail else "")
        )
        return cls


CREATE_ARGUMENTS = _EndpointArguments(update=False)
UPDATE_ARGUMENTS = _EndpointArguments(update=True)


def _secret_values(arguments: dict[str, Any]) -> list[str]:
    """
    Return the endpoint's secret values and the registry password among ``arguments``.

    They are handed to Airflow's masker too, so wherever the task log would show them, it shows ``***``.
    """
    values = [str(v) for v in (arguments.get("secrets") or {}).values() if v]
    if arguments.get("container_registry_password"):
        values.append(str(arguments["container_registry_password"]))
    for value in values:
        mask_secret(value)
    return values


def _accelerators(instance_size: str) -> int:
    """Accelerators of one replica: the ``N`` of an ``xN`` size."""
    return int(instance_size[1:]) if instance_size[1:].isdigit() else 1


def _held_replicas(endpoint: InferenceEndpoint) -> int:
    """Replicas the endpoint holds hardware for now: its target (autoscaled), none once failed or stopped."""
    if endpoint.status in (EndpointStatus.FAILED, EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO):
        return 0
    return endpoint.target_replicas or endpoint.ready_replicas or endpoint.min_replica


class HuggingFaceEndpointBaseOperator(EndpointTarget, BaseOperator):
    """
    What every lifecycle operator shares.

    :param endpoint_name: the endpoint. (templated)
    :param namespace: its namespace; default the connection's, or the token's user. (templated)
    :param hf_conn_id: the Airflow connection. (templated)
    :param wait_for_completion: wait until the operation's end state (each operator says which).
    :param deferrable: wait in the triggerer, holding no worker slot; default
        ``[operators] default_deferrable``. A deferred wait without ``retries`` of its own gets 2,
        5 s apart (see :class:`~airflow_provider_hfep.sensors.endpoint.HuggingFaceEndpointSensor`):
        a retry of create, update or resume finds its own change and waits again.
    :param poll_interval: seconds between two looks while waiting. Default 30.
    :param timeout: seconds to wait at most. Default 3600.
    """

    #: the state a completed operation waits for
    target_status: str = EndpointStatus.RUNNING.value
    #: what killing the task does to the endpoint (see :class:`HuggingFaceEndpointStartOperator`)
    on_kill_action: str = "none"
    #: the endpoint this try has started, once it sent the request that starts it
    _started: tuple[str, str] | None = None

    def __init__(
        self,
        *,
        endpoint_name: str,
        namespace: str | None = None,
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30,
        timeout: float = 3600,
        **kwargs: Any,
    ) -> None:
        retries_for_airflow_only = race_safe_retries(kwargs, deferrable and wait_for_completion)
        super().__init__(**kwargs)
        self.retries_for_airflow_only = retries_for_airflow_only
        check_seconds("poll_interval", poll_interval)
        check_seconds("timeout", timeout)
        self._set_target(endpoint_name, namespace, hf_conn_id)
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout

    def _complete(
        self,
        context: Context,
        endpoint: InferenceEndpoint | None,
        name: str,
        namespace: str,
        settle_until: float | None = None,
    ) -> dict[str, Any]:
        """Return the endpoint, or wait for :attr:`target_status` inline or in the triggerer."""
        if not self.wait_for_completion:
            return (
                endpoint.to_dict()
                if endpoint
                else {"name": name, "namespace": namespace, "status": self.target_status}
            )
        # Inline, wait the whole timeout. Deferrable, look once first (a deadline already passed makes
        # watch() take exactly one look): an operation already complete needs no deferral.
        result = self.hook.client.watch(
            name,
            namespace=namespace,
            target=self.target_status,
            end_time=self.hook.client.api_time + (0 if self.deferrable else self.timeout),
            poll_interval=self.poll_interval,
            settle_until=settle_until,
        )
        if not (self.deferrable and result.status is Outcome.TIMEOUT):
            return self.finish_wait(result.to_event(), result.endpoint)
        self.defer(
            trigger=HuggingFaceEndpointStatusTrigger(
                hf_conn_id=self.hf_conn_id,
                endpoint_name=name,
                namespace=namespace,
                end_time=self.hook.client.api_time + self.timeout,
                target_status=self.target_status,
                poll_interval=self.poll_interval,
                settle_until=settle_until,
                on_kill_action=self.on_kill_action,
            ),
            method_name="execute_complete",
            # A safety net only: the trigger's own end_time fires first, with a clearer message.
            timeout=timedelta(seconds=self.timeout + self.poll_interval + 60),
        )

    @final_verdicts
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired, on a fresh instance: everything comes from the event."""
        return self.finish_wait(event)


class HuggingFaceEndpointStartOperator(HuggingFaceEndpointBaseOperator):
    """
    What create, update and resume share: they start a deployment that bills, so a kill stops it.

    A task killed by a user (marked failed or success, or cleared) or by its ``execution_timeout``
    leaves the endpoint it started cost-safe, according to ``on_kill_action``: on the worker through
    :meth:`on_kill`, and while deferred through the trigger's ``on_kill`` (Airflow 3.3 and later; on
    3.0 to 3.2 Airflow kills a deferred task without telling it). A triggerer restart does neither.

    Before it asks the service to start anything, it checks that the namespace can get the hardware
    now (the hardware listing's availability and quota), and refuses with the numbers otherwise
    (:class:`~airflow_provider_hfep.endpoints.CapacityError`): an endpoint that cannot be scheduled
    would otherwise sit in ``pending`` until the wait's timeout.

    :param on_kill_action: ``pause`` (default), ``scale_to_zero`` or ``none`` (leave it as it is).
    :param check_capacity: check quota and availability first. Default True.
    """

    def __init__(self, *, on_kill_action: str = "pause", check_capacity: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        check_choice("on_kill_action", on_kill_action, ON_KILL_ACTIONS)
        self.on_kill_action = on_kill_action
        self.check_capacity = check_capacity

    def _check_capacity(
        self, namespace: str, hardware: tuple[Any, Any, Any, Any], replicas: int, already_held: int = 0
    ) -> None:
        """
        Refuse hardware the namespace cannot get now (``hardware``: vendor, region, instance type and size).

        Best effort: a hardware listing that cannot be read (a token that may not list it, the API's
        trouble) is logged and the change goes ahead; the service still judges it.
        """
        if not self.check_capacity:
            return
        vendor, region, instance_type, instance_size = hardware
        try:
            self.hook.client.check_capacity(
                vendor=vendor,
                region=region,
                instance_type=instance_type,
                instance_size=instance_size,
                replicas=replicas,
                already_held=already_held,
                namespace=namespace,
            )
        except EndpointsApiError as exc:
            self.log.warning("Could not check the quota (going ahead, the service will judge): %s", exc)

    def _check_change_capacity(
        self, namespace: str, current: InferenceEndpoint, changes: EndpointUpdate
    ) -> None:
        """Check the hardware an update moves to, counting what the endpoint already holds."""
        if changes.instance_type is None and changes.instance_size is None and changes.min_replica is None:
            return
        if current.status in (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO):
            return  # it takes hardware only when resumed: the resume checks
        instance_type = changes.instance_type or current.instance_type
        target = (
            current.vendor,
            current.region,
            instance_type,
            changes.instance_size or current.instance_size,
        )
        replicas = max(1, changes.min_replica if changes.min_replica is not None else current.min_replica)
        held = 0
        if instance_type == current.instance_type and current.instance_size:
            held = _accelerators(current.instance_size) * _held_replicas(current)
        self._check_capacity(namespace, target, replicas, held)

    def _starting(self, name: str, namespace: str) -> None:
        """Record, before the request that starts the endpoint, what :meth:`on_kill` would stop."""
        self._started = (name, namespace)

    # -- hardware fallback (create and resume with ``hardware=[...]``) -------------------------

    #: the ordered hardware choices; ``None``: no fallback
    choices: tuple[HardwareChoice, ...] | None = None
    capacity_timeout: float = CAPACITY_TIMEOUT

    def _take_hardware(
        self, hardware: Any, capacity_timeout: float, first: HardwareChoice | None = None
    ) -> None:
        """Check ``hardware`` and ``capacity_timeout`` now, at parse time (``first``: the create's own choice)."""
        check_seconds("capacity_timeout", capacity_timeout)
        self.capacity_timeout = capacity_timeout
        if hardware is None:
            return
        given = parse_hardware(hardware)
        if first is not None:
            choices = parse_hardware([first, *(c for c in given if c.key != first.key)])
        else:
            choices = given
        self.choices = choices

    def _fallback(self, name: str, namespace: str, tried: Any = ()) -> HardwareFallback:
        return HardwareFallback(
            self.hook.client,
            name,
            namespace,
            self.choices or (),
            check_capacity=self.check_capacity,
            log=self.log,
            tried=tried or (),
            close=self.on_kill_action,
        )

    def _resume_on(self, fallback: HardwareFallback, on: dict[str, Any], index: int) -> InferenceEndpoint:
        """Resume a stopped endpoint on choice ``index``, moved there first (``on``: the hardware it is on)."""
        choice = fallback.choices[index]
        if choice.key != on["hardware"]:  # a stopped endpoint takes the change without starting
            self.hook.client.update(fallback.name, choice.update(), namespace=fallback.namespace)
            on["hardware"] = choice.key
        endpoint = self.hook.client.resume(fallback.name, namespace=fallback.namespace, running_ok=True)
        self.log.info(
            "Resumed endpoint %s/%s on hardware choice %s/%s (%s): %s",
            fallback.namespace,
            fallback.name,
            index + 1,
            len(fallback.choices),
            choice.label,
            endpoint.status,
        )
        return endpoint

    def _wait_on_choices(
        self, context: Context, fallback: HardwareFallback, index: int, endpoint: InferenceEndpoint
    ) -> dict[str, Any]:
        """
        Wait for ``running``; a choice that stays pending past ``capacity_timeout`` or fails for capacity moves on.

        Inline, the whole walk happens here; deferrable, each wait is a deferral and
        :meth:`execute_complete` moves on (the choice and what was tried travel with it).
        """
        name, namespace = fallback.name, fallback.namespace
        client = self.hook.client
        while self.wait_for_completion:
            result = client.watch(
                name,
                namespace=namespace,
                target=self.target_status,
                end_time=client.api_time + (0 if self.deferrable else self.timeout),
                poll_interval=self.poll_interval,
                pending_deadline=client.api_time + self.capacity_timeout,
            )
            if self.deferrable and result.status is Outcome.TIMEOUT:
                # What failed so far waits in this try's XCom; the choice reached is the endpoint's own
                # hardware, read again when the wait ends.
                context["ti"].xcom_push(key=TRIED_KEY, value=fallback.tried)
                self.defer(
                    trigger=HuggingFaceEndpointStatusTrigger(
                        hf_conn_id=self.hf_conn_id,
                        endpoint_name=name,
                        namespace=namespace,
                        end_time=client.api_time + self.timeout,
                        target_status=self.target_status,
                        poll_interval=self.poll_interval,
                        on_kill_action=self.on_kill_action,
                        pending_deadline=client.api_time + self.capacity_timeout,
                    ),
                    method_name="execute_complete",
                    timeout=timedelta(seconds=self.timeout + self.poll_interval + 60),
                )
            if not needs_move(result):
                return {**self.finish_wait(result.to_event(), result.endpoint), **fallback.result(index)}
            index, endpoint = fallback.next_choice(index, result, self.capacity_timeout)
        return {**endpoint.to_dict(), **fallback.result(index)}

    @final_verdicts
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Finish after the trigger fired; with hardware choices, move on when the choice had no capacity."""
        if not self.choices:
            return self.finish_wait(event)
        result = WatchResult.from_event(event)
        ti = context["ti"]
        tried = ti.xcom_pull(task_ids=ti.task_id, key=TRIED_KEY, map_indexes=ti.map_index) or []
        fallback = self._fallback(result.endpoint_name, result.namespace or self.hook.namespace, tried)
        current = self.hook.client.get(fallback.name, namespace=fallback.namespace)
        index = start_index(fallback.choices, current, resume_reached=True)
        if not needs_move(result):
            return {
                **self.finish_wait(event, current if result.status is Outcome.SUCCESS else None),
                **fallback.result(index),
            }
        index, endpoint = fallback.next_choice(index, result, self.capacity_timeout)
        return self._wait_on_choices(context, fallback, index, endpoint)

    def on_kill(self) -> None:
        """Apply ``on_kill_action`` to the endpoint this try started (the task is being killed)."""
        if self._started is None or self.on_kill_action == "none":
            return
        name, namespace = self._started
        # A client of its own: the task's may be in the middle of a request this signal interrupted.
        hook = HuggingFaceEndpointHook(self.hf_conn_id, namespace=namespace)
        try:
            getattr(hook.client, self.on_kill_action)(name, namespace=namespace)
        except Exception as exc:  # best effort: the task is being killed either way
            self.log.warning(
                "Task killed: could not %s endpoint %s/%s: %s", self.on_kill_action, namespace, name, exc
            )
            return
        finally:
            if "client" in vars(hook):
                hook.client.close()
        self.log.warning("Task killed: applied %s to endpoint %s/%s", self.on_kill_action, namespace, name)


@CREATE_ARGUMENTS.document
class HuggingFaceCreateEndpointOperator(HuggingFaceEndpointStartOperator):
    """
    Create an endpoint and (by default) wait until it is running and healthy.

    Safe to retry: the endpoint is tagged with a marker of this task instance, so a retry that finds
    the endpoint its own earlier try created takes it over instead of failing with "already exists".
    It takes every argument of :class:`~airflow_provider_hfep.endpoints.EndpointSpec` but ``name``
    (below), with the same defaults.

    :param endpoint_name: endpoint name, 1-32 lowercase letters, digits or '-'. (templated)
    :param if_exists: when the name is taken: ``fail`` (default), ``reuse`` the endpoint as it is, or
        ``update`` it to these arguments.
    :param update_settle_seconds: with ``if_exists="update"``, see :class:`HuggingFaceUpdateEndpointOperator`.
    :param idle_stop_minutes: create it with the safety net armed: ``min_replica=0`` and a
        ``scale_to_zero_timeout`` of at most this many minutes, so the service scales it to zero
        when idle, whether Airflow is alive or not. Default None (as the arguments say).
    :param wait_for_completion: wait until running and healthy. Default True.
    :param hardware: hardware alternatives after the endpoint's own (``vendor``, ``region``,
        ``instance_type``, ``instance_size``, ``accelerator``: choice 1), best first, as dicts of
        those keys (``accelerator`` where it differs), same vendor and region (an update cannot move
        an endpoint to another). It is created on the first choice the hardware listing says it can
        have; a create the service refuses for capacity tries the next; a deployment that stays
        ``pending`` past ``capacity_timeout`` or fails for capacity is moved to the next (an update of
        its compute). Default None.
    :param capacity_timeout: seconds a deployment may stay ``pending`` with no replica starting before
        the next choice is tried (with ``hardware``). Default 900 (15 minutes).
    :return: the endpoint as a JSON-safe dict; with ``hardware``, also ``hardware`` (the choice
        used), ``hardware_choice`` (its position, from 1) and ``hardware_tried`` (each choice that
        failed, and why).
    """

    template_fields: Sequence[str] = (
        *HuggingFaceEndpointBaseOperator.template_fields,
        *CREATE_ARGUMENTS.templated,
    )
    template_fields_renderers = {"custom_image": "json", "env": "json", "tags": "json"}

    @CREATE_ARGUMENTS.signed
    def __init__(
        self,
        *,
        if_exists: str = "fail",
        update_settle_seconds: float = 15,
        idle_stop_minutes: int | None = None,
        hardware: list[dict[str, str]] | None = None,
        capacity_timeout: float = CAPACITY_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        arguments = CREATE_ARGUMENTS.take(kwargs)
        super().__init__(**kwargs)
        check_choice("if_exists", if_exists, IF_EXISTS)
        if hardware is not None and if_exists == "update":
            raise InvalidEndpointArgumentError(
                "if_exists",
                "'update' does not combine with hardware=[...] (which hardware would it update to?)",
                "use if_exists='fail' or 'reuse', or leave hardware out",
            )
        own = {name: arguments[name] for name in ("vendor", "region", "instance_type", "instance_size")}
        self._take_hardware(
            hardware,
            capacity_timeout,
            HardwareChoice(**own, accelerator=arguments["accelerator"]) if hardware is not None else None,
        )
        if idle_stop_minutes is not None:  # the service scales it to zero when idle, Airflow alive or not
            check_count("idle_stop_minutes", idle_stop_minutes, 1)
            arguments["min_replica"] = 0
            timeout = arguments["scale_to_zero_timeout"]
            arguments["scale_to_zero_timeout"] = min(timeout or idle_stop_minutes, idle_stop_minutes)
        self.if_exists = if_exists
        self.update_settle_seconds = update_settle_seconds
        for name in CREATE_ARGUMENTS.templated:  # rendered by Airflow, then checked (in _spec)
            setattr(self, name, arguments.pop(name))
        self.spec_arguments: dict[str, Any] = arguments
        # The static arguments are checked now, at parse time; the templated ones after rendering.
        static = {k: v for k, v in self.spec_arguments.items() if not k.startswith("container_registry")}
        validate_arguments(static)

    def _spec(self, marker: str, choice: HardwareChoice | None = None) -> EndpointSpec:
        rendered = {name: getattr(self, name) for name in CREATE_ARGUMENTS.templated}
        validate_arguments({"tags": rendered["tags"]})  # before the marker tag is added to it
        rendered["tags"] = [*(rendered["tags"] or []), marker]
        arguments = dict(self.spec_arguments)
        if choice is not None:
            arguments.update({k: v for k, v in choice.to_json().items() if v is not None})
        return EndpointSpec(name=self.endpoint_name, **rendered, **arguments)

    def _secrets_to_hide(self) -> list[str]:
        return _secret_values(self.spec_arguments)

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        self._secrets_to_hide()
        name, namespace = self._resolve(context)
        marker = task_instance_tag(context["ti"])
        if self.choices:
            return self._create_on_choices(context, name, namespace, marker)
        spec = self._spec(marker)
        settle_until = None
        try:
            self._check_capacity(
                namespace,
                (spec.vendor, spec.region, spec.instance_type, spec.instance_size),
                spec.min_replica,
            )
            self._starting(name, namespace)
            endpoint = self.hook.client.create(spec, namespace=namespace, adopt_tag=marker)
            self.log.info("Created endpoint %s/%s (%s)", namespace, name, endpoint.status)
        except (ConflictError, CapacityError) as refused:
            # The name may be taken by an endpoint that already holds this hardware (an earlier try
            # of this task, one to reuse): the quota it uses is its own.
            try:
                existing = self.hook.client.get(name, namespace=namespace)
            except NotFoundError:
                raise refused from None
            if marker in existing.tags:
                self.log.info(
                    "Endpoint %s/%s was created by an earlier try of this task: taking it over",
                    namespace,
                    name,
                )
                endpoint = existing
                if existing.status in (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO):
                    # The earlier try was killed and its on_kill_action stopped it: start it again.
                    self._check_capacity(namespace, existing.hardware, existing.min_replica)
                    endpoint = self.hook.client.resume(name, namespace=namespace)
            elif self.if_exists == "reuse":
                self._started = None  # not started by this task: a kill leaves it alone
                self.log.info(
                    "Endpoint %s/%s exists (%s): reusing it as it is", namespace, name, existing.status
                )
                endpoint = existing
            elif self.if_exists == "update":
                changes = EndpointUpdate(**{f: getattr(spec, f) for f in UPDATE_ARGUMENTS.names})
                self._check_change_capacity(namespace, existing, changes)
                settle_until = self.hook.client.api_time + self.update_settle_seconds
                endpoint = self.hook.client.update(name, changes, namespace=namespace)
                self.log.info("Endpoint %s/%s exists: updated it to these arguments", namespace, name)
            else:
                raise ConflictError(
                    409,
                    f"Endpoint {namespace}/{name} already exists. Fix: choose another endpoint_name, or set "
                    "if_exists='reuse' or if_exists='update'",
                ) from None
        return self._complete(context, endpoint, name, namespace, settle_until)

    def _create_on_choices(self, context: Context, name: str, namespace: str, marker: str) -> dict[str, Any]:
        """Create the endpoint on the first choice it can have; a retry takes over its own at the choice reached."""
        fallback = self._fallback(name, namespace)
        try:
            existing: InferenceEndpoint | None = self.hook.client.get(name, namespace=namespace)
        except NotFoundError:
            existing = None
        if existing is not None and marker not in existing.tags:
            if self.if_exists != "reuse":
                raise ConflictError(
                    409,
                    f"Endpoint {namespace}/{name} already exists. Fix: choose another endpoint_name, or set "
                    "if_exists='reuse'",
                )
            self.log.info("Endpoint %s/%s exists (%s): reusing it as it is", namespace, name, existing.status)
            index = start_index(fallback.choices, existing, resume_reached=True)
            return self._wait_on_choices(context, fallback, index, existing)
        self._starting(name, namespace)
        if existing is not None:  # an earlier try of this task created it: go on from the choice it reached
            index = start_index(fallback.choices, existing, resume_reached=True)
            self.log.info(
                "Endpoint %s/%s was created by an earlier try of this task, on hardware choice %s/%s (%s): "
                "taking it over",
                namespace,
                name,
                index + 1,
                len(fallback.choices),
                fallback.choices[index].label,
            )
            if existing.status not in (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO):
                return self._wait_on_choices(context, fallback, index, existing)
            on = {"hardware": existing.hardware}
            index, endpoint = fallback.start_on(
                index, existing.min_replica, existing, lambda i: self._resume_on(fallback, on, i)
            )
            return self._wait_on_choices(context, fallback, index, endpoint)

        def create(index: int) -> InferenceEndpoint:
            spec = self._spec(marker, fallback.choices[index])
            endpoint = self.hook.client.create(spec, namespace=namespace, adopt_tag=marker)
            self.log.info(
                "Created endpoint %s/%s on hardware choice %s/%s (%s): %s",
                namespace,
                name,
                index + 1,
                len(fallback.choices),
                fallback.choices[index].label,
                endpoint.status,
            )
            return endpoint

        replicas = int(self.spec_arguments.get("min_replica") or 0)
        index, endpoint = fallback.start_on(0, replicas, None, create)
        return self._wait_on_choices(context, fallback, index, endpoint)


class HuggingFaceCreateEndpointFromCatalogOperator(HuggingFaceEndpointStartOperator):
    """
    Deploy a model of Hugging Face's catalog (a ready recipe) and (by default) wait until it runs.

    The catalog chooses the hardware and the engine for the model: give the repository (and, to pick
    among its recipes, the accelerator) or one recipe's id. The quota check of the other start
    operators does not apply (the hardware is the catalog's choice); the service refuses what the
    quota cannot hold. A retry that finds the endpoint of this name deployed from the same model takes
    it over.

    :param endpoint_name: the new endpoint's name. (templated)
    :param repo_id: the model repository, e.g. ``HuggingFaceH4/zephyr-7b-beta``. (templated)
    :param recipe_id: instead of ``repo_id``: one recipe's ``publicId`` (see ``list_catalog()``). (templated)
    :param accelerator: with ``repo_id``: ``cpu``, ``gpu`` or ``neuron``, to choose among its recipes. (templated)
    :param if_exists: the name is taken by another endpoint: ``fail`` (default) or ``reuse`` it.
    :param wait_for_completion: wait until running and healthy. Default True.
    :return: the endpoint as a JSON-safe dict.
    """

    template_fields: Sequence[str] = (
        *HuggingFaceEndpointBaseOperator.template_fields,
        "repo_id",
        "recipe_id",
        "accelerator",
    )

    def __init__(
        self,
        *,
        repo_id: str | None = None,
        recipe_id: str | None = None,
        accelerator: str | None = None,
        if_exists: str = "fail",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (repo_id is None) == (recipe_id is None):
            raise InvalidEndpointArgumentError(
                "repo_id",
                "give exactly one of repo_id and recipe_id",
                "name the model, or one of its recipes",
            )
        check_choice("if_exists", if_exists, ("fail", "reuse"))
        self.repo_id = repo_id
        self.recipe_id = recipe_id
        self.accelerator = accelerator
        self.if_exists = if_exists

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        name, namespace = self._resolve(context)
        self._starting(name, namespace)
        try:
            endpoint = self.hook.client.deploy_from_catalog(
                repo_id=self.repo_id,
                recipe_id=self.recipe_id,
                name=name,
                accelerator=self.accelerator,
                namespace=namespace,
            )
            self.log.info(
                "Deployed %s from the catalog as %s/%s", self.repo_id or self.recipe_id, namespace, name
            )
        except ConflictError:
            existing = self.hook.client.get(name, namespace=namespace)
            ours = existing.from_catalog and (self.repo_id is None or existing.repository == self.repo_id)
            if not ours and self.if_exists != "reuse":
                raise ConflictError(
                    409,
                    f"Endpoint {namespace}/{name} already exists. Fix: choose another endpoint_name, or set "
                    "if_exists='reuse'",
                ) from None
            if not ours:
                self._started = None  # someone else's: a kill leaves it alone
            self.log.info("Endpoint %s/%s exists (%s): taking it as it is", namespace, name, existing.status)
            endpoint = existing
        return self._complete(context, endpoint, name, namespace)


@UPDATE_ARGUMENTS.document
class HuggingFaceUpdateEndpointOperator(HuggingFaceEndpointStartOperator):
    """
    Update an endpoint (a deep merge of the given arguments) and (by default) wait until it runs them.

    The service answers an update with the endpoint still ``running`` and only then moves to
    ``updating``: a wait that trusted that first ``running`` would return while the old revision still
    serves. So a ``running`` seen before any other state counts only after ``update_settle_seconds``.
    It takes every argument of :class:`~airflow_provider_hfep.endpoints.EndpointUpdate` (below), each
    ``None`` by default (unchanged); at least one is needed.

    :param if_updating: when an earlier update is still ``updating``: ``fail`` (default) or ``wait`` for
        it (on the worker) before applying this one.
    :param update_settle_seconds: how long a ``running`` seen right after the update is not trusted.
    :param wait_for_completion: wait until running and healthy with the new configuration. Default True.
    :return: the endpoint as a JSON-safe dict.
    """

    template_fields: Sequence[str] = (
        *HuggingFaceEndpointBaseOperator.template_fields,
        *UPDATE_ARGUMENTS.templated,
    )
    template_fields_renderers = {"custom_image": "json", "env": "json", "tags": "json"}

    @UPDATE_ARGUMENTS.signed
    def __init__(
        self, *, if_updating: str = "fail", update_settle_seconds: float = 15, **kwargs: Any
    ) -> None:
        arguments = UPDATE_ARGUMENTS.take(kwargs)
        super().__init__(**kwargs)
        check_choice("if_updating", if_updating, IF_UPDATING)
        self.if_updating = if_updating
        self.update_settle_seconds = update_settle_seconds
        check_has_changes(arguments.values())
        for name in UPDATE_ARGUMENTS.templated:  # rendered by Airflow, then checked (in EndpointUpdate)
            setattr(self, name, arguments.pop(name))
        self.update_arguments: dict[str, Any] = arguments
        validate_arguments(self.update_arguments)

    def _secrets_to_hide(self) -> list[str]:
        return _secret_values(self.update_arguments)

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        self._secrets_to_hide()
        rendered = {name: getattr(self, name) for name in UPDATE_ARGUMENTS.templated}
        changes = EndpointUpdate(**rendered, **self.update_arguments)
        name, namespace = self._resolve(context)
        current = self.hook.client.get(name, namespace=namespace)
        self._check_change_capacity(namespace, current, changes)
        if current.status == EndpointStatus.UPDATING:
            if self.if_updating == "fail":
                raise InvalidEndpointArgumentError(
                    "if_updating",
                    f"endpoint {namespace}/{name} is still applying an earlier update",
                    "retry later, or set if_updating='wait' to wait for it first",
                )
            self.log.info(
                "Endpoint %s/%s is still updating: waiting for it before this update", namespace, name
            )
            self.hook.client.wait(
                name, namespace=namespace, timeout=self.timeout, poll_interval=self.poll_interval
            )
        settle_until = self.hook.client.api_time + self.update_settle_seconds
        self._starting(name, namespace)
        endpoint = self.hook.client.update(name, changes, namespace=namespace)
        self.log.info("Updated endpoint %s/%s with %r", namespace, name, changes)
        return self._complete(context, endpoint, name, namespace, settle_until)


class HuggingFaceResumeEndpointOperator(HuggingFaceEndpointStartOperator):
    """
    Resume a paused (or scaled-to-zero) endpoint.

    Does not wait by default: as the setup of a batch window it should be quick, so that a failure of
    the wait (in a sensor inside the window) still lets the teardown pause run.

    :param running_ok: an endpoint that is already running is fine. Default True.
    :param wait_for_completion: wait until running and healthy. Default False.
    :param idle_stop_minutes: arm the safety net first: before the resume, the endpoint is set to
        scale itself to zero after this many minutes without requests (``minReplica: 0``,
        ``scaleToZeroTimeout``), which the service does with no client involved, so it holds when
        Airflow is gone. Default None (off). A tighter setting of the endpoint's own is kept; a
        refused change is a warning naming the risk, never a failed task; a running endpoint is not
        changed (the change would redeploy it). The change stays after the window (see the README).
    :param hardware: ordered hardware choices, best first: dicts of ``vendor``, ``region``,
        ``instance_type``, ``instance_size`` (and ``accelerator`` where it differs), one vendor and
        region per list (an update cannot move an endpoint to another). The stopped endpoint is put
        on the first choice the hardware listing says it can have (availability and quota) before it
        is resumed; one the service refuses for capacity, or that stays ``pending`` past
        ``capacity_timeout`` or fails for capacity, moves it to the next. Default None (as it is).
    :param capacity_timeout: seconds a deployment may stay ``pending`` with no replica starting before
        the next choice is tried (with ``hardware``). Default 900 (15 minutes).
    :param hardware_sticky: start from the choice the endpoint is on now (say, last night's fallback)
        instead of the first. A retry of the task always starts from the choice its earlier try
        reached. Default False.
    :return: the endpoint as a JSON-safe dict, with ``idle_stop``: what the net was, or why it was not
        armed; with ``hardware``, also ``hardware`` (the choice used), ``hardware_choice`` (its
        position, from 1) and ``hardware_tried`` (each choice that failed, and why).
    """

    def __init__(
        self,
        *,
        running_ok: bool = True,
        wait_for_completion: bool = False,
        idle_stop_minutes: int | None = None,
        hardware: list[dict[str, str]] | None = None,
        capacity_timeout: float = CAPACITY_TIMEOUT,
        hardware_sticky: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(wait_for_completion=wait_for_completion, **kwargs)
        if idle_stop_minutes is not None:
            check_count("idle_stop_minutes", idle_stop_minutes, 1)
        self.running_ok = running_ok
        self.idle_stop_minutes = idle_stop_minutes
        self._take_hardware(hardware, capacity_timeout)
        self.hardware_sticky = hardware_sticky

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        name, namespace = self._resolve(context)
        stopped = (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO, EndpointStatus.FAILED)
        net = None
        if self.check_capacity or self.idle_stop_minutes is not None or self.choices:
            current = self.hook.client.get(name, namespace=namespace)
            if self.idle_stop_minutes is not None:
                net = self._arm_idle_stop(name, namespace, current)
            if self.choices:
                result = self._resume_on_choices(context, name, namespace, current)
                return result if net is None else {**result, "idle_stop": net}
            if self.check_capacity and current.status in stopped:
                self._check_capacity(namespace, current.hardware, current.min_replica)
        self._starting(name, namespace)
        endpoint = self.hook.client.resume(name, namespace=namespace, running_ok=self.running_ok)
        self.log.info("Resumed endpoint %s/%s: %s", namespace, name, endpoint.status)
        result = self._complete(context, endpoint, name, namespace)
        return result if net is None else {**result, "idle_stop": net}

    def _resume_on_choices(
        self, context: Context, name: str, namespace: str, current: InferenceEndpoint
    ) -> dict[str, Any]:
        """Put the stopped endpoint on the first choice it can have, resume it, and wait moving on if need be."""
        fallback = self._fallback(name, namespace)
        retry = int(getattr(context["ti"], "try_number", 1) or 1) > 1
        start = start_index(fallback.choices, current, resume_reached=retry or self.hardware_sticky)
        if start:
            why = "an earlier try of this task reached it" if retry else "hardware_sticky"
            self.log.info(
                "Starting at hardware choice %s/%s (%s): %s",
                start + 1,
                len(fallback.choices),
                fallback.choices[start].label,
                why,
            )
        self._starting(name, namespace)
        if current.status not in (
            EndpointStatus.PAUSED,
            EndpointStatus.SCALED_TO_ZERO,
            EndpointStatus.FAILED,
        ):
            # Already up (or starting): it keeps its hardware; a choice without capacity still moves on.
            endpoint = self.hook.client.resume(name, namespace=namespace, running_ok=self.running_ok)
            index = start_index(fallback.choices, current, resume_reached=True)
            self.log.info("Resumed endpoint %s/%s: %s", namespace, name, endpoint.status)
            return self._wait_on_choices(context, fallback, index, endpoint)

        on = {"hardware": current.hardware}
        index, endpoint = fallback.start_on(
            start, current.min_replica, current, lambda i: self._resume_on(fallback, on, i)
        )
        return self._wait_on_choices(context, fallback, index, endpoint)

    def _arm_idle_stop(self, name: str, namespace: str, current: InferenceEndpoint) -> dict[str, Any]:
        """
        Set the endpoint to scale itself to zero when idle, while it is paused: the cheapest moment.

        A paused endpoint takes the change without running (nothing bills); the resume that follows
        starts it with the net in place. Never fails the task: a refusal is a warning naming the risk.
        """
        minutes = int(self.idle_stop_minutes or 0)
        before = {"min_replica": current.min_replica, "scale_to_zero_timeout": current.scale_to_zero_timeout}
        change = idle_stop_scaling(current, minutes)
        if change is None:
            self.log.info(
                "Endpoint %s/%s already scales to zero within %s idle minutes", namespace, name, minutes
            )
            return {"minutes": minutes, "armed": True, "changed": None}
        risk = (
            f"if Airflow dies before the window closes, endpoint {namespace}/{name} bills until someone "
            "pauses it"
        )
        if current.status not in (EndpointStatus.PAUSED, EndpointStatus.SCALED_TO_ZERO):
            warning = f"the idle stop is not armed: the endpoint is {current.status} and the change would redeploy it; {risk}"
            self.log.warning("%s", warning)
            return {"minutes": minutes, "armed": False, "changed": None, "warning": warning}
        try:
            changes = EndpointUpdate(
                min_replica=change["min_replica"], scale_to_zero_timeout=change["scale_to_zero_timeout"]
            )
            self.hook.client.update(name, changes, namespace=namespace)
        except EndpointsApiError as exc:
            warning = f"the idle stop could not be armed ({exc}); {risk}"
            self.log.warning("%s", warning)
            return {"minutes": minutes, "armed": False, "changed": None, "warning": warning}
        self.log.info(
            "Endpoint %s/%s scales itself to zero after %s idle minutes (was minReplica=%s, scaleToZeroTimeout=%s)",
            namespace,
            name,
            minutes,
            before["min_replica"],
            before["scale_to_zero_timeout"],
        )
        return {"minutes": minutes, "armed": True, "changed": {"before": before, "after": change}}


class _EndpointStopOperator(HuggingFaceEndpointBaseOperator):
    """Pause and scale to zero: one call, idempotent, applied at once, so no wait by default."""

    #: the client method that stops the endpoint
    action: str

    def __init__(
        self,
        *,
        wait_for_completion: bool = False,
        restore_hardware: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(wait_for_completion=wait_for_completion, **kwargs)
        self.restore_hardware = (
            None
            if restore_hardware is None
            else parse_hardware([restore_hardware], field="restore_hardware")[0]
        )

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        name, namespace = self._resolve(context)
        endpoint = getattr(self.hook.client, self.action)(name, namespace=namespace)
        self.log.info("Endpoint %s/%s after %s: %s", namespace, name, self.action, endpoint.status)
        result = self._complete(context, endpoint, name, namespace)
        if self.restore_hardware is None:
            return result
        return {**result, "restored_hardware": self._restore(name, namespace, endpoint)}

    def _restore(self, name: str, namespace: str, stopped: InferenceEndpoint) -> dict[str, str] | None:
        """
        Put the stopped endpoint back on ``restore_hardware`` if a fallback moved it; never fail the close.

        Stopped, it takes the change without starting (nothing to check against the quota: it holds
        nothing). The result the task returns still describes the hardware it ran on (what the cost
        report prices).
        """
        choice = self.restore_hardware
        if choice is None or choice.runs(stopped):
            return None
        try:
            self.hook.client.update(name, choice.update(), namespace=namespace)
        except EndpointsApiError as exc:
            self.log.warning(
                "Could not put endpoint %s/%s back on %s (it stays on %s %s): %s",
                namespace,
                name,
                choice.label,
                stopped.instance_type,
                stopped.instance_size,
                exc,
            )
            return None
        self.log.info(
            "Endpoint %s/%s put back on %s (the fallback had moved it to %s %s)",
            namespace,
            name,
            choice.label,
            stopped.instance_type,
            stopped.instance_size,
        )
        return choice.to_json()


class HuggingFacePauseEndpointOperator(_EndpointStopOperator):
    """
    Pause an endpoint: no replica, no bill, no URL, until resumed. Idempotent.

    :param wait_for_completion: wait until the state reads ``paused``. Default False (a pause is
        applied at once).
    :param restore_hardware: after the pause, put the endpoint back on this hardware (a dict of
        ``vendor``, ``region``, ``instance_type``, ``instance_size`` and optionally ``accelerator``)
        if it is elsewhere (a hardware fallback moved it); a paused endpoint takes the change without
        starting. A refused change is a warning, never a failed close. Default None.
    :return: the endpoint as a JSON-safe dict (the hardware it ran on); with ``restore_hardware``,
        also ``restored_hardware``: the hardware it was put back on, ``None`` if it was not moved.
    """

    action = "pause"
    target_status = EndpointStatus.PAUSED.value


class HuggingFaceScaleToZeroEndpointOperator(_EndpointStopOperator):
    """
    Scale an endpoint to zero replicas: no bill, URL kept, it restarts on the next request. Idempotent.

    :param wait_for_completion: wait until the state reads ``scaledToZero``. Default False.
    :param restore_hardware: after the scale to zero, put the endpoint back on this hardware if a
        hardware fallback moved it (see :class:`HuggingFacePauseEndpointOperator`). Default None.
    :return: the endpoint as a JSON-safe dict; with ``restore_hardware``, also ``restored_hardware``.
    """

    action = "scale_to_zero"
    target_status = EndpointStatus.SCALED_TO_ZERO.value


class HuggingFaceDeleteEndpointOperator(HuggingFaceEndpointBaseOperator):
    """
    Delete an endpoint for good.

    :param missing_ok: an endpoint that does not exist is fine. Default False.
    :param wait_for_completion: wait until the API no longer knows it. Default False.
    :return: ``{"name", "namespace", "status": "deleted"}``.
    """

    target_status = DELETED

    def __init__(self, *, missing_ok: bool = False, wait_for_completion: bool = False, **kwargs: Any) -> None:
        super().__init__(wait_for_completion=wait_for_completion, **kwargs)
        self.missing_ok = missing_ok

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        name, namespace = self._resolve(context)
        self.hook.client.delete(name, namespace=namespace, missing_ok=self.missing_ok)
        self.log.info("Deleted endpoint %s/%s", namespace, name)
        return self._complete(context, None, name, namespace)


def endpoint_targets(endpoints: Any, field: str = "endpoints") -> list[dict[str, Any]]:
    """
    Read a list of endpoints: names, or dicts ``{"name", "namespace", "hardware"}``; checked now.

    Returns ``{"name", "namespace", "hardware"}`` each (``hardware`` as a tuple of choices, or
    ``None``). Refuses, naming the field, an empty list, an unknown key, a bad name or hardware, and
    the same endpoint twice.
    """
    if isinstance(endpoints, (str, dict)) or not isinstance(endpoints, (list, tuple)) or not endpoints:
        raise InvalidEndpointArgumentError(
            field,
            f"{endpoints!r} is not a non-empty list of endpoints",
            "give names, or dicts {'name', 'namespace', 'hardware'}",
        )
    targets: list[dict[str, Any]] = []
    for index, item in enumerate(endpoints):
        where = f"{field}[{index}]"
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise InvalidEndpointArgumentError(
                where, f"{type(item).__name__} is not a name or a dict", "give 'name' or {'name': ...}"
            )
        unknown = sorted(set(entry) - {"name", "namespace", "hardware"})
        if unknown:
            raise InvalidEndpointArgumentError(
                f"{where}.{unknown[0]}", "is not an endpoint key", "use name, namespace and hardware"
            )
        name, namespace = entry.get("name"), entry.get("namespace")
        try:
            validate_endpoint_name(name)
            if namespace is not None:
                validate_namespace(namespace)
        except InvalidEndpointArgumentError as exc:
            raise InvalidEndpointArgumentError(f"{where}.{exc.field}", exc.problem, exc.fix) from None
        if any((t["name"], t["namespace"]) == (name, namespace) for t in targets):
            raise InvalidEndpointArgumentError(where, f"{name!r} is listed twice", "list each endpoint once")
        hardware = entry.get("hardware")
        choices = None if hardware is None else parse_hardware(hardware, field=f"{where}.hardware")
        targets.append({"name": name, "namespace": namespace, "hardware": choices})
    return targets


class HuggingFaceEndpointsReadyOperator(BaseOperator):
    """
    Wait in the triggerer until several endpoints run; move one without capacity; fail at once when one cannot run.

    The ``ready`` task of a window over several endpoints (or over one with hardware choices): the
    endpoints are resumed beforehand (side by side), and this task watches them all in one trigger
    (:class:`~airflow_provider_hfep.triggers.endpoint.HuggingFaceEndpointsReadyTrigger`). An
    endpoint with hardware choices that stays ``pending`` past ``capacity_timeout`` or fails for
    capacity is moved to its next choice (the quota pre-flight first) and the wait goes on; any other
    ending (a failure, no choice left, the timeout) fails the task as soon as it is seen, without
    waiting for the others, so the window's closes run at once.

    :param endpoints: names, or dicts ``{"name", "namespace", "hardware"}`` (``hardware``: the ordered
        choices, as the resume operator takes them).
    :param hf_conn_id: the Airflow connection. (templated)
    :param timeout: seconds to wait for all of them. Default 3600.
    :param poll_interval: seconds between two looks at each endpoint. Default 30.
    :param capacity_timeout: seconds an endpoint with hardware choices may stay ``pending`` before the
        next choice. Default 900.
    :param check_capacity: run the quota pre-flight before each move. Default True.
    :param close: what an endpoint no choice could run is left in: ``pause`` (default),
        ``scale_to_zero`` or ``none``.
    :return: ``{"endpoints": [...]}``: each endpoint as a JSON-safe dict, with ``hardware``,
        ``hardware_choice`` and ``hardware_tried`` where it has choices.
    """

    template_fields: Sequence[str] = ("hf_conn_id",)
    ui_color = "#ffd21e"

    def __init__(
        self,
        *,
        endpoints: list[str | dict[str, Any]],
        hf_conn_id: str = HuggingFaceEndpointHook.default_conn_name,
        timeout: float = 3600,
        poll_interval: float = 30,
        capacity_timeout: float = CAPACITY_TIMEOUT,
        check_capacity: bool = True,
        close: str = "pause",
        **kwargs: Any,
    ) -> None:
        retries_for_airflow_only = race_safe_retries(kwargs, True)
        super().__init__(**kwargs)
        self.retries_for_airflow_only = retries_for_airflow_only
        self.targets = endpoint_targets(endpoints)
        check_seconds("timeout", timeout)
        check_seconds("poll_interval", poll_interval)
        check_seconds("capacity_timeout", capacity_timeout)
        check_choice("close", close, ON_KILL_ACTIONS)
        self.hf_conn_id = hf_conn_id
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.capacity_timeout = capacity_timeout
        self.check_capacity = check_capacity
        self.close = close

    @cached_property
    def hook(self) -> HuggingFaceEndpointHook:
        return HuggingFaceEndpointHook(self.hf_conn_id)

    def _choices_of(self, name: str, namespace: str) -> tuple[HardwareChoice, ...] | None:
        for target in self.targets:
            if target["name"] == name and (target["namespace"] or self.hook.namespace) == namespace:
                return target["hardware"]
        return None

    @final_verdicts
    def execute(self, context: Context) -> dict[str, Any]:
        now = self.hook.client.api_time
        watched = [
            {
                "name": t["name"],
                "namespace": t["namespace"] or self.hook.namespace,
                "pending_deadline": now + self.capacity_timeout if t["hardware"] else None,
            }
            for t in self.targets
        ]
        return self._look(context, watched, now + self.timeout)

    def _look(self, context: Context, watched: list[dict[str, Any]], end_time: float) -> dict[str, Any]:
        """Take one look at each endpoint: move the ones without capacity, fail at the first that cannot run, else defer."""
        client = self.hook.client
        waiting = []
        for entry in watched:
            result = client.watch(
                entry["name"],
                namespace=entry["namespace"],
                end_time=0,  # one look
                poll_interval=self.poll_interval,
                pending_deadline=entry["pending_deadline"],
            )
            if result.status is Outcome.SUCCESS:
                continue
            if result.status is not Outcome.TIMEOUT:
                self._settle(context, entry, result)
            waiting.append(entry)
        if not waiting:
            return self._done(context, watched)
        if client.api_time >= end_time:
            names = ", ".join(f"{e['namespace']}/{e['name']}" for e in waiting)
            raise EndpointWaitTimeoutError(f"Not running after {self.timeout:g} s: {names}")
        self.defer(
            trigger=HuggingFaceEndpointsReadyTrigger(
                hf_conn_id=self.hf_conn_id,
                endpoints=waiting,
                end_time=end_time,
                poll_interval=self.poll_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=max(1.0, end_time - client.api_time) + self.poll_interval + 60),
        )

    def _settle(self, context: Context, entry: dict[str, Any], result: WatchResult) -> None:
        """Move an endpoint without capacity to its next choice (and restart its capacity clock), or fail now."""
        choices = self._choices_of(entry["name"], entry["namespace"])
        if choices and needs_move(result):
            ti = context["ti"]
            tried_by = ti.xcom_pull(task_ids=ti.task_id, key=TRIED_KEY, map_indexes=ti.map_index) or {}
            key = f"{entry['namespace']}/{entry['name']}"
            fallback = HardwareFallback(
                self.hook.client,
                entry["name"],
                entry["namespace"],
                choices,
                check_capacity=self.check_capacity,
                log=self.log,
                tried=tried_by.get(key, ()),
                close=self.close,
            )
            current = self.hook.client.get(entry["name"], namespace=entry["namespace"])
            index = start_index(choices, current, resume_reached=True)
            try:
                fallback.next_choice(index, result, self.capacity_timeout)
            finally:
                ti.xcom_push(key=TRIED_KEY, value={**tried_by, key: fallback.tried})
            entry["pending_deadline"] = self.hook.client.api_time + self.capacity_timeout
            return
        self.log.error(
            "Endpoint %s/%s cannot run: the others are not waited for", entry["namespace"], entry["name"]
        )
        raise_for_result(explain(self.hook, result))

    @final_verdicts
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Go on from the trigger's event: done, or move the endpoint that ended the wait and look again."""
        if not isinstance(event, dict) or "endpoints" not in event:
            raise EndpointsError(f"Not an endpoints trigger event: {event!r}")
        watched, end_time = event["endpoints"], float(event["end_time"])
        if event["status"] == Outcome.SUCCESS:
            return self._done(context, watched)
        result = WatchResult.from_event(event["result"])
        entry = next(
            (e for e in watched if e["name"] == result.endpoint_name and e["namespace"] == result.namespace),
            None,
        )
        if entry is None or result.status in (Outcome.TIMEOUT, Outcome.ERROR, Outcome.NOT_FOUND):
            raise_for_result(explain(self.hook, result))
        if entry is not None:
            self._settle(context, entry, result)
        return self._look(context, watched, end_time)

    def _done(self, context: Context, watched: list[dict[str, Any]]) -> dict[str, Any]:
        ti = context["ti"]
        tried_by = ti.xcom_pull(task_ids=ti.task_id, key=TRIED_KEY, map_indexes=ti.map_index) or {}
        found = []
        for target in self.targets:
            namespace = target["namespace"] or self.hook.namespace
            endpoint = self.hook.client.get(target["name"], namespace=namespace)
            entry = endpoint.to_dict()
            if target["hardware"]:
                index = start_index(target["hardware"], endpoint, resume_reached=True)
                entry.update(
                    {
                        "hardware": target["hardware"][index].to_json(),
                        "hardware_choice": index + 1,
                        "hardware_tried": tried_by.get(f"{namespace}/{target['name']}", []),
                    }
                )
            found.append(entry)
        self.log.info("Running: %s", ", ".join(f"{e['namespace']}/{e['name']}" for e in found))
        return {"endpoints": found}
