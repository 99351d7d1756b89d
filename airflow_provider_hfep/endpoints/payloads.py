"""
Create and update bodies, built exactly as huggingface_hub builds them, and checked before sending.

Why checked here: the live API answers some mistakes with an opaque 500, silently ignores others
(snake_case ``health_route`` in a custom image) or coerces them (the legacy ``protected`` type became
a billable but unreachable ``private`` endpoint). Each refusal names the argument and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any

from airflow_provider_hfep.endpoints.arguments import check_choice
from airflow_provider_hfep.endpoints.errors import InvalidEndpointArgumentError
from airflow_provider_hfep.endpoints.models import EndpointType, ScalingMetric

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
HUB_NAME_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
METRIC_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*(?:/[a-z0-9]+(?:-[a-z0-9]+)*)?")
ACCELERATORS = ("cpu", "gpu", "neuron")
IMAGE_VARIANTS = (
    "custom",
    "huggingface",
    "huggingfaceNeuron",
    "llamacpp",
    "tei",
    "tgi",
    "tgiNeuron",
    "vLLM",
    "vLLMNeuron",
    "sGLang",
    "hfServe",
)
# The Hub's pipeline tags, plus the endpoint-only ones (custom handlers, sentence-transformers).
KNOWN_TASKS = frozenset(
    {
        "any-to-any",
        "audio-classification",
        "audio-to-audio",
        "audio-text-to-text",
        "automatic-speech-recognition",
        "conversational",
        "custom",
        "depth-estimation",
        "document-question-answering",
        "feature-extraction",
        "fill-mask",
        "image-classification",
        "image-feature-extraction",
        "image-segmentation",
        "image-text-to-text",
        "image-to-3d",
        "image-to-image",
        "image-to-text",
        "image-to-video",
        "keypoint-detection",
        "mask-generation",
        "object-detection",
        "question-answering",
        "reinforcement-learning",
        "robotics",
        "sentence-embeddings",
        "sentence-ranking",
        "sentence-similarity",
        "summarization",
        "table-question-answering",
        "tabular-classification",
        "tabular-regression",
        "text-classification",
        "text-generation",
        "text-ranking",
        "text-retrieval",
        "text-to-3d",
        "text-to-audio",
        "text-to-image",
        "text-to-speech",
        "text-to-video",
        "text2text-generation",
        "time-series-forecasting",
        "token-classification",
        "translation",
        "unconditional-image-generation",
        "video-classification",
        "video-text-to-text",
        "visual-document-retrieval",
        "visual-question-answering",
        "zero-shot-classification",
        "zero-shot-image-classification",
        "zero-shot-object-detection",
    }
)


def validate_endpoint_name(name: Any, field: str = "endpoint_name") -> str:
    """Check an endpoint name against the API's rule (the whole string: no trailing newline) and return it."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise InvalidEndpointArgumentError(
            field,
            f"{name!r} is not a valid endpoint name",
            "use 1 to 32 lowercase letters, digits or '-', starting and ending with a letter or digit "
            "(e.g. 'batch-endpoint')",
        )
    return name


def _hub_name(value: Any) -> bool:
    """Tell a Hub user, organisation or repository name: the whole string, never '.' or '..' (a path step)."""
    return isinstance(value, str) and bool(HUB_NAME_PATTERN.fullmatch(value)) and ".." not in value


def validate_namespace(namespace: Any, field: str = "namespace") -> str:
    """
    Check a namespace (user or organisation name) as the Hub names them, and return it.

    Letters, digits, '-', '_' and '.', starting and ending with a letter or digit, at most 96: one
    path segment that no URL can read as a step up ('..') or as anything but a name.
    """
    if not _hub_name(namespace):
        raise InvalidEndpointArgumentError(
            field,
            f"{namespace!r} is not a valid namespace",
            "use your user name or an organisation name (letters, digits, '-', '_', '.'), or leave it "
            "empty to use the token's user",
        )
    return namespace


def validate_repo_id(repo_id: Any, field: str = "repo_id") -> str:
    """Check a model repository id, ``owner/name`` with both parts named as the Hub names them."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    if len(parts) != 2 or not all(_hub_name(part) for part in parts):
        raise InvalidEndpointArgumentError(
            field, f"{repo_id!r} is not a model repository id", "use owner/name, e.g. 'openai-community/gpt2'"
        )
    return repo_id


def validate_metric(metric: Any, field: str = "metric") -> str:
    """Check a metric name: lowercase words joined by '-', at most one '/' (``vllm/requests``)."""
    if not isinstance(metric, str) or not METRIC_PATTERN.fullmatch(metric):
        raise InvalidEndpointArgumentError(
            field,
            f"{metric!r} is not a metric name",
            "use one of the service's metrics, e.g. 'replica-status', 'pending-request', 'vllm/requests'",
        )
    return metric


def warn_if_unknown(field: str, value: Any, known: Iterable[str]) -> None:
    """
    Let through a value the service defines and extends (a task, an accelerator, an image kind).

    Hugging Face adds engines, accelerators and tasks; refusing what this package does not know yet
    would block what the API takes. An unknown value is logged (with the closest known one, a
    likely typo) and sent: the service judges it.
    """
    known = sorted(known)
    if value in known:
        return
    close = difflib.get_close_matches(str(value), known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    log.warning("%s: %r is not one this provider knows%s; sending it as is", field, value, hint)


def validate_task(task: Any, field: str = "task") -> str:
    """Check a task is a non-empty string; warn when the service's known tasks do not include it."""
    if not isinstance(task, str) or not task.strip():
        raise InvalidEndpointArgumentError(
            field, f"{task!r} is not a task", "use a Hub pipeline tag such as 'text-generation'"
        )
    warn_if_unknown(field, task, KNOWN_TASKS)
    return task


def _check_type(value: Any) -> None:
    if value == "protected":
        raise InvalidEndpointArgumentError(
            "type",
            "'protected' is a legacy type that the API turns into an unreachable 'private' endpoint",
            "use 'authenticated' (any Hugging Face token may call it) or 'private' (your organisation only)",
        )
    check_choice("type", value, [t.value for t in EndpointType])


def _check_replicas(min_replica: Any, max_replica: Any) -> None:
    for field, value in (("min_replica", min_replica), ("max_replica", max_replica)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InvalidEndpointArgumentError(
                field, f"{value!r} is not a replica count", "use an integer >= 0"
            )
    if max_replica is not None and max_replica < 1:
        raise InvalidEndpointArgumentError(
            "max_replica", f"{max_replica} leaves no replica to serve", "use 1 or more"
        )
    if min_replica is not None and max_replica is not None and min_replica > max_replica:
        raise InvalidEndpointArgumentError(
            "min_replica",
            f"{min_replica} is more than max_replica={max_replica}",
            "use 0 <= min_replica <= max_replica",
        )


def _check_scale_to_zero(timeout: Any, min_replica: Any) -> None:
    if timeout is None:
        return
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise InvalidEndpointArgumentError(
            "scale_to_zero_timeout",
            f"{timeout!r} is not a number of minutes",
            "use an integer >= 1 (minutes)",
        )
    if min_replica is not None and min_replica != 0:
        raise InvalidEndpointArgumentError(
            "scale_to_zero_timeout",
            f"scale to zero needs min_replica=0, got min_replica={min_replica}",
            "set min_replica=0, or drop scale_to_zero_timeout",
        )


def _check_string_map(field: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidEndpointArgumentError(
            field, "must map names to string values", 'use e.g. {"MAX_INPUT_LENGTH": "1024"}'
        )


def _check_string_list(field: str, value: Any) -> None:
    if value is None:
        return
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not all(isinstance(v, str) for v in value)
    ):
        raise InvalidEndpointArgumentError(
            field, "must be a list of strings", 'use e.g. ["--max-model-len", "4096"]'
        )


def _check_custom_image(image: Any) -> None:
    if image is None:
        return
    if not isinstance(image, Mapping) or not image:
        raise InvalidEndpointArgumentError(
            "custom_image",
            "must be a non-empty dict",
            'use {"url": "ghcr.io/...", "healthRoute": "/health", "port": 80}',
        )
    if "health_route" in image:
        raise InvalidEndpointArgumentError(
            "custom_image",
            "'health_route' is snake_case, which the API silently ignores",
            "spell it 'healthRoute'",
        )
    if "url" in image:
        return
    if len(image) != 1:
        raise InvalidEndpointArgumentError(
            "custom_image",
            f"has {len(image)} keys: the image is either a flat container with 'url' or one variant",
            f"use a flat dict with 'url', or one variant key such as {', '.join(IMAGE_VARIANTS[:4])}",
        )
    for variant in image:
        warn_if_unknown("custom_image", variant, IMAGE_VARIANTS)
    for variant, config in image.items():
        if variant != "huggingface" and not (isinstance(config, Mapping) and config.get("url")):
            raise InvalidEndpointArgumentError(
                "custom_image",
                f"variant {variant!r} has no 'url'",
                f'add the container image: {{"{variant}": {{"url": ...}}}}',
            )


def _check_accelerator(accelerator: Any) -> None:
    if not isinstance(accelerator, str) or not accelerator.strip():
        raise InvalidEndpointArgumentError(
            "accelerator", f"{accelerator!r} is not an accelerator", "use e.g. 'gpu'"
        )
    warn_if_unknown("accelerator", accelerator, ACCELERATORS)


def _check_route_path(path: Any) -> None:
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise InvalidEndpointArgumentError(
            "path", f"{path!r} does not start with '/'", "use e.g. '/models/my-model'"
        )


def _check_scaling_metric(metric: Any) -> None:
    if metric is not None:
        check_choice("scaling_metric", metric, [m.value for m in ScalingMetric])


def _check_registry_credentials(image: Any, username: Any, password: Any) -> None:
    if password is not None and username is None:
        raise InvalidEndpointArgumentError(
            "container_registry_password",
            "was given without a username",
            "set container_registry_username too",
        )
    if username is not None and (image is None or not ("url" in image or "custom" in image)):
        raise InvalidEndpointArgumentError(
            "container_registry_username",
            "registry credentials only apply to a custom container image",
            'set custom_image={"url": ...} (or {"custom": {...}})',
        )


def validate_arguments(values: Mapping[str, Any]) -> None:
    """
    Check the create/update arguments present in ``values`` (``None`` means absent).

    The one place the rules live: used by :class:`EndpointSpec`, :class:`EndpointUpdate`, and by
    operators on their static arguments at DAG parse time (templated ones are checked after rendering).
    Cross-field rules apply when both fields are present.
    """
    present = {key: value for key, value in values.items() if value is not None}
    if "accelerator" in present:
        _check_accelerator(present["accelerator"])
    _check_replicas(present.get("min_replica"), present.get("max_replica"))
    _check_scale_to_zero(present.get("scale_to_zero_timeout"), present.get("min_replica"))
    _check_scaling_metric(present.get("scaling_metric"))
    if "task" in present:
        validate_task(present["task"])
    _check_custom_image(present.get("custom_image"))
    if "container_registry_username" in present or "container_registry_password" in present:
        _check_registry_credentials(
            present.get("custom_image"),
            present.get("container_registry_username"),
            present.get("container_registry_password"),
        )
    for field in ("container_command", "container_args", "tags"):
        _check_string_list(field, present.get(field))
    for field in ("env", "secrets"):
        _check_string_map(field, present.get(field))
    if "type" in present:
        _check_type(present["type"])
    _check_route_path(present.get("path"))
    if "private_link_shared" in present and "private_link_account_id" not in present:
        raise InvalidEndpointArgumentError(
            "private_link_shared", "was given without private_link_account_id", "set the AWS account id too"
        )


def build_image(
    custom_image: Mapping[str, Any] | None,
    registry_username: str | None = None,
    registry_password: str | None = None,
) -> dict[str, Any]:
    """Build the ``model.image`` union: a flat dict with ``url`` becomes ``custom``; variants pass as-is."""
    if custom_image is None:
        return {"huggingface": {}}
    image = {"custom": dict(custom_image)} if "url" in custom_image else dict(custom_image)
    if registry_username is None:
        return image
    credentials = {"username": registry_username}
    if registry_password is not None:
        credentials["password"] = registry_password
    return {**image, "custom": {**image["custom"], "credentials": credentials}}


def _argument(default: Any = MISSING, *, doc: str, templated: bool = False, update: bool = True) -> Any:
    """
    Declare one argument of an endpoint, once: its default, its doc, whether it is templated and updatable.

    :class:`EndpointSpec`, :class:`EndpointUpdate`, the create and update operators' signatures,
    template fields and docstrings, and the README's tables (a test checks them) are made from these.
    """
    metadata = {"doc": doc, "templated": templated, "update": update}
    if default is MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True, kw_only=True)
class EndpointSpec:
    """
    Everything needed to create an endpoint; arguments and defaults as in huggingface_hub.

    Validated on construction: a bad value raises :class:`InvalidEndpointArgumentError` naming the
    argument and the fix, before anything is sent. Each field's documentation is its declaration's
    (``endpoint_arguments()``), added to this docstring below.
    """

    name: str = _argument(doc="endpoint name (1-32 lowercase letters, digits, '-').", update=False)
    repository: str = _argument(doc="model repository, e.g. ``openai-community/gpt2``.", templated=True)
    framework: str = _argument(doc="model framework, e.g. ``pytorch``.")
    accelerator: str = _argument(doc="``cpu``, ``gpu`` or ``neuron``.")
    instance_size: str = _argument(doc="e.g. ``x1``.")
    instance_type: str = _argument(doc="e.g. ``nvidia-l4`` or ``intel-spr``.")
    region: str = _argument(doc="e.g. ``us-east-1``.", update=False)
    vendor: str = _argument(doc="``aws``, ``azure`` or ``gcp``.", update=False)
    min_replica: int = _argument(1, doc="minimum replicas (0 allows scale to zero).")
    max_replica: int = _argument(1, doc="maximum replicas (at least 1).")
    scaling_metric: str | None = _argument(None, doc="``pendingRequests`` or ``hardwareUsage``.")
    scaling_threshold: float | None = _argument(None, doc="the metric's threshold for scaling up.")
    scale_to_zero_timeout: int | None = _argument(
        None, doc="minutes of inactivity before scaling to zero (needs min_replica=0)."
    )
    revision: str | None = _argument(None, doc="model revision to pin.", templated=True)
    task: str | None = _argument(
        None,
        doc="the task to serve; omitted from the body when ``None`` (the server infers it).",
        templated=True,
    )
    custom_image: dict[str, Any] | None = _argument(
        None,
        doc="container image: a flat dict with ``url`` (sent as ``custom``) or a variant dict such as "
        '``{"tgi": {"url": ...}}``.',
        templated=True,
    )
    container_registry_username: str | None = _argument(
        None, doc="registry user for a private custom image.", update=False
    )
    container_registry_password: str | None = _argument(
        None, doc="registry password for a private custom image.", update=False
    )
    container_command: list[str] | None = _argument(None, doc="container entrypoint override.")
    container_args: list[str] | None = _argument(None, doc="arguments appended to the entrypoint.")
    env: dict[str, str] | None = _argument(
        None, doc="environment variables (sent only when non-empty; ``{}`` clears on update).", templated=True
    )
    secrets: dict[str, str] | None = _argument(
        None, doc="secret environment variables (sent only when non-empty; ``{}`` clears on update)."
    )
    type: str = _argument(
        EndpointType.AUTHENTICATED.value,
        doc="``public``, ``authenticated`` (default) or ``private``.",
        update=False,
    )
    domain: str | None = _argument(None, doc="custom domain.")
    path: str | None = _argument(None, doc="custom route path, starting with '/'.")
    cache_http_responses: bool | None = _argument(None, doc="whether the proxy caches answers.")
    tags: list[str] | None = _argument(None, doc="tags to attach.", templated=True)
    private_link_account_id: str | None = _argument(
        None, doc="AWS account allowed to connect through PrivateLink.", update=False
    )
    private_link_shared: bool | None = _argument(
        None, doc="share the PrivateLink service across the namespace's endpoints.", update=False
    )

    def __repr__(self) -> str:  # secrets and registry passwords never appear in logs
        shown = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("secrets", "container_registry_password")
        }
        return f"EndpointSpec({', '.join(f'{k}={v!r}' for k, v in shown.items() if v is not None)})"

    def __post_init__(self) -> None:
        validate_endpoint_name(self.name, "name")
        for field in ("repository", "framework", "instance_size", "instance_type", "region", "vendor"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value.strip():
                raise InvalidEndpointArgumentError(
                    field, f"{value!r} is empty or not a string", f"set {field}"
                )
        _check_accelerator(self.accelerator)
        _check_type(self.type)
        validate_arguments(vars(self))

    def to_body(self) -> dict[str, Any]:
        """Build the POST body, key for key as huggingface_hub 1.33 sends it (checked by test_body_parity)."""
        body: dict[str, Any] = {
            "compute": {
                "accelerator": self.accelerator,
                "instanceSize": self.instance_size,
                "instanceType": self.instance_type,
                "scaling": {
                    "maxReplica": self.max_replica,
                    "minReplica": self.min_replica,
                    "scaleToZeroTimeout": self.scale_to_zero_timeout,
                },
            },
            "model": {
                "framework": self.framework,
                "repository": self.repository,
                "revision": self.revision,
                "image": build_image(
                    self.custom_image, self.container_registry_username, self.container_registry_password
                ),
            },
            "name": self.name,
            "provider": {"region": self.region, "vendor": self.vendor},
            "type": str(self.type),
        }
        if self.private_link_account_id is not None:
            # The 2026 contract's EndpointPrivateService: {accountId, shared}. (huggingface_hub 1.33
            # sends a region there, which the API has no field for.)
            body["privateService"] = {"accountId": self.private_link_account_id}
            if self.private_link_shared is not None:
                body["privateService"]["shared"] = self.private_link_shared
        if self.scaling_metric:
            body["compute"]["scaling"]["measure"] = {str(self.scaling_metric): self.scaling_threshold}
        model = body["model"]
        if self.task is not None:
            model["task"] = self.task
        if self.container_command is not None:
            model["command"] = list(self.container_command)
        if self.container_args is not None:
            model["args"] = list(self.container_args)
        if self.env:
            model["env"] = dict(self.env)
        if self.secrets:
            model["secrets"] = dict(self.secrets)
        if self.domain is not None or self.path is not None:
            body["route"] = {
                key: value
                for key, value in (("domain", self.domain), ("path", self.path))
                if value is not None
            }
        if self.cache_http_responses is not None:  # where the 2026 API keeps it
            body["experimentalFeatures"] = {"cacheHttpResponses": self.cache_http_responses}
        if self.tags is not None:
            body["tags"] = list(self.tags)
        return body


def check_has_changes(values: Iterable[Any]) -> None:
    """Refuse an update whose every argument is ``None``: it would change nothing."""
    if all(value is None for value in values):
        raise InvalidEndpointArgumentError(
            "update", "nothing to change", "pass at least one argument, e.g. min_replica=0 or revision='...'"
        )


@dataclass(frozen=True, kw_only=True)
class EndpointUpdate:
    """
    The changes of an update; only the arguments that are not ``None`` are sent (a deep merge).

    ``env={}`` or ``secrets={}`` clears them, as in huggingface_hub. ``type`` and ``provider`` cannot
    be changed by an update. An update with nothing to change is refused. Its fields are the
    :class:`EndpointSpec` fields declared ``update=True`` (a test checks it), documented there.
    """

    accelerator: str | None = None
    instance_size: str | None = None
    instance_type: str | None = None
    min_replica: int | None = None
    max_replica: int | None = None
    scale_to_zero_timeout: int | None = None
    scaling_metric: str | None = None
    scaling_threshold: float | None = None
    repository: str | None = None
    framework: str | None = None
    revision: str | None = None
    task: str | None = None
    custom_image: dict[str, Any] | None = None
    container_command: list[str] | None = None
    container_args: list[str] | None = None
    env: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    domain: str | None = None
    path: str | None = None
    cache_http_responses: bool | None = None
    tags: list[str] | None = None

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "secrets"}
        return f"EndpointUpdate({', '.join(f'{k}={v!r}' for k, v in shown.items() if v is not None)})"

    def __post_init__(self) -> None:
        check_has_changes(getattr(self, f.name) for f in fields(self))
        validate_arguments(vars(self))

    def to_body(self) -> dict[str, Any]:
        """Build the PUT body, key for key as huggingface_hub sends it."""
        body: dict[str, Any] = {}

        def put(path: tuple[str, ...], value: Any) -> None:
            if value is None:
                return
            node = body
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value

        put(("compute", "accelerator"), self.accelerator)
        put(("compute", "instanceSize"), self.instance_size)
        put(("compute", "instanceType"), self.instance_type)
        put(("compute", "scaling", "maxReplica"), self.max_replica)
        put(("compute", "scaling", "minReplica"), self.min_replica)
        put(("compute", "scaling", "scaleToZeroTimeout"), self.scale_to_zero_timeout)
        if self.scaling_metric:
            put(("compute", "scaling", "measure"), {str(self.scaling_metric): self.scaling_threshold})
        put(("model", "repository"), self.repository)
        put(("model", "framework"), self.framework)
        put(("model", "revision"), self.revision)
        put(("model", "task"), self.task)
        if self.custom_image is not None:
            put(("model", "image"), build_image(self.custom_image))
        put(("model", "command"), None if self.container_command is None else list(self.container_command))
        put(("model", "args"), None if self.container_args is None else list(self.container_args))
        put(("model", "env"), None if self.env is None else dict(self.env))
        put(("model", "secrets"), None if self.secrets is None else dict(self.secrets))
        put(("route", "domain"), self.domain)
        put(("route", "path"), self.path)
        put(("experimentalFeatures", "cacheHttpResponses"), self.cache_http_responses)
        put(("tags",), None if self.tags is None else list(self.tags))
        return body


def endpoint_arguments(*, update: bool = False) -> list[tuple[str, Any, str, bool]]:
    """
    List the endpoint's declared arguments: ``(name, default, doc, templated)``, the spec's or an update's.

    ``default`` is ``MISSING`` for a required one. The endpoint's ``name`` is left out: operators take
    it as ``endpoint_name``.
    """
    found = []
    for declared in fields(EndpointSpec):
        if declared.name == "name" or (update and not declared.metadata["update"]):
            continue
        default = None if update else declared.default
        found.append((declared.name, default, declared.metadata["doc"], declared.metadata["templated"]))
    return found


def _document(cls: type, lines: Iterable[str]) -> None:
    cls.__doc__ = (
        (cls.__doc__ or "").rstrip() + "\n\n" + "\n".join(f"    {line}" for line in lines) + "\n    "
    )


_document(EndpointSpec, (f":param {f.name}: {f.metadata['doc']}" for f in fields(EndpointSpec)))
_document(EndpointUpdate, (f":param {name}: {doc}" for name, _, doc, _ in endpoint_arguments(update=True)))
