"""
What every operator and the sensor share: the endpoint, the connection, how a wait ends.

The endpoint they act on, the connection they go through, and the end of a wait on the worker.

Names written literally in a DAG are checked when the DAG is parsed (an import error at once, not a
failed task at night); templated ones are checked after rendering, before any request.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_hfep._compat import AirflowFailException
from airflow_provider_hfep.endpoints.errors import EndpointsError
from airflow_provider_hfep.endpoints.payloads import validate_endpoint_name, validate_namespace
from airflow_provider_hfep.endpoints.waiting import DELETED, Outcome, WatchResult, raise_for_result
from airflow_provider_hfep.hooks.endpoint import HuggingFaceEndpointHook
from airflow_provider_hfep.links.endpoint import HuggingFaceEndpointLink

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from airflow.sdk import BaseOperatorLink, Context

    from airflow_provider_hfep.endpoints.models import InferenceEndpoint

log = logging.getLogger(__name__)


#: What a deferred wait gets unless the DAG says otherwise (its own ``retries``, or default_args'):
#: Airflow may fail a deferred task whose trigger fires within seconds, when the executor's stale
#: "success" of the deferring try arrives after the resume (apache/airflow#66374, #67287, #71580,
#: #72716). The retry looks once before deferring, so an endpoint already running ends it at once.
RESUME_RACE_RETRIES = 2
RESUME_RACE_RETRY_DELAY = timedelta(seconds=5)


def race_safe_retries(kwargs: dict[str, Any], deferrable: bool) -> bool:
    """
    Give a deferrable wait :data:`RESUME_RACE_RETRIES` quick retries, unless ``retries`` is set.

    Returns whether it did: those retries are for Airflow's own failures only (see :func:`final_verdicts`).
    """
    given = {**(kwargs.get("default_args") or {}), **kwargs}  # the DAG's default_args count as set
    if not deferrable or "retries" in given:
        return False
    kwargs["retries"] = RESUME_RACE_RETRIES
    if "retry_delay" not in given:
        kwargs["retry_delay"] = RESUME_RACE_RETRY_DELAY
    return True


def final_verdicts(method: Callable[..., Any]) -> Callable[..., Any]:
    """
    Keep the retries :func:`race_safe_retries` gave a task for Airflow's own failures.

    The provider's verdicts (a failed deployment, a missing endpoint, a timeout, a refused argument)
    would be the same on a retry: raised as ``AirflowFailException`` (their message and type name
    kept, the original as its cause), Airflow fails the task without retrying. A task whose retries
    the DAG set keeps Airflow's usual rules, and a task with a ``retry_policy`` (Airflow 3.4) gets its
    errors as they are: the policy decides (Airflow never shows it an ``AirflowFailException``).
    """

    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except EndpointsError as exc:
            if (
                getattr(self, "retries_for_airflow_only", False)
                and getattr(self, "retry_policy", None) is None
            ):
                raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
            raise

    return run


def is_literal(value: Any) -> bool:
    """Tell whether ``value`` is a string with no Jinja in it: what it says now is what the task will use."""
    return isinstance(value, str) and "{{" not in value and "{%" not in value


def explain(hook: HuggingFaceEndpointHook, result: WatchResult, secrets: Sequence[str] = ()) -> WatchResult:
    """
    Tell why a wait ended badly, in the task log and in the error.

    The endpoint's log lines and replicas go to the task log, the likely cause into the result's
    message (so into the error).

    Failed, update-failed and timed-out waits only; a success, a pause or a deletion needs no story.
    Best effort: a diagnosis that cannot be read leaves the wait's own message as it was.
    """
    if result.status not in (Outcome.FAILED, Outcome.UPDATE_FAILED, Outcome.TIMEOUT):
        return result
    health_failing = "health route" in result.message
    try:
        diagnosis = hook.client.diagnose(
            result.endpoint_name,
            namespace=result.namespace,
            health_failing=health_failing,
            secrets=secrets,
        )
    except Exception as exc:  # best effort: never in the way of the wait's own error
        log.warning("Could not read the endpoint's log and replicas to explain it: %s", exc)
        return result
    for line in diagnosis.report():
        log.error("%s", line)
    return dataclasses.replace(result, message=f"{result.message}. Likely cause: {diagnosis.cause}")


class EndpointTarget:
    """
    Mixin for operators and sensors: ``endpoint_name``, ``namespace``, ``hf_conn_id``, the hook.

    It also gives them what the UI shows alike: the three templated fields (a task adds its own after
    them), the link to the endpoint's page, and Hugging Face's yellow.
    """

    template_fields: Collection[str] = ("endpoint_name", "namespace", "hf_conn_id")
    operator_extra_links: Collection[BaseOperatorLink] = (HuggingFaceEndpointLink(),)
    ui_color = "#ffd21e"

    endpoint_name: str
    namespace: str | None
    hf_conn_id: str

    def _set_target(self, endpoint_name: str, namespace: str | None, hf_conn_id: str) -> None:
        """Keep the three (templated) fields; validate the name and namespace now when they are literal."""
        if is_literal(endpoint_name):
            validate_endpoint_name(endpoint_name)
        if namespace is not None and is_literal(namespace):
            validate_namespace(namespace)
        self.endpoint_name = endpoint_name
        self.namespace = namespace
        self.hf_conn_id = hf_conn_id

    @cached_property
    def hook(self) -> HuggingFaceEndpointHook:
        return HuggingFaceEndpointHook(self.hf_conn_id, namespace=self.namespace)

    def _resolve(self, context: Context) -> tuple[str, str]:
        """Check the rendered name, resolve the namespace and record the link, before any change."""
        name = validate_endpoint_name(self.endpoint_name)
        namespace = self.hook.namespace
        HuggingFaceEndpointLink.persist(context, namespace, name)
        return name, namespace

    def _secrets_to_hide(self) -> list[str]:
        """
        Return the secret values this task knows (those it sends), never to be shown from the endpoint's log.

        None here; create and update know theirs (and hand them to Airflow's masker as well).
        """
        return []

    def explain(self, result: WatchResult) -> WatchResult:
        """Tell why a wait ended badly, in the task log and in the error (see :func:`explain`)."""
        return explain(self.hook, result, self._secrets_to_hide())

    def finish_wait(
        self, event: dict[str, Any] | None, endpoint: InferenceEndpoint | None = None
    ) -> dict[str, Any]:
        """
        End a wait on the worker, from its trigger event: raise the typed error, or return the endpoint.

        Whether the wait ran inline or in the triggerer, it ends here. After a deferral this runs on a
        fresh operator instance with only the event, so it reads the endpoint afresh; an inline wait
        passes the ``endpoint`` its last look just read.
        """
        result = self.explain(WatchResult.from_event(event))
        raise_for_result(result)
        if result.state == DELETED:
            return {"name": result.endpoint_name, "namespace": result.namespace, "status": DELETED}
        if endpoint is None:
            endpoint = self.hook.client.get(result.endpoint_name, namespace=result.namespace)
        return endpoint.to_dict()
