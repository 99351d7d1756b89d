"""
What the emulated management API refuses, and how it says so.

The server-side checks of create and update bodies, and the error bodies (``{"error": "..."}``) the
real service answers with.

These rules are the service's, written from its documentation apart from the client's own checks:
the emulator must not share the client's mistakes.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from fastapi.responses import JSONResponse

NAME_RULE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
ENDPOINT_TYPES = ("public", "authenticated", "private")
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


class ApiError(Exception):
    """
    Raised by the routes and their dependencies: answered as the service answers errors.

    :param status: the HTTP status.
    :param message: the ``error`` text of the body.
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """Answer an error as the service words them: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def validation_failed(path: str, reason: str) -> ApiError:
    """Make the service's 400 for a body field it refuses."""
    return ApiError(400, f"VALIDATION_FAILED: {path}: {reason}")


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def check_create_body(body: Any) -> None:
    """Refuse a create body as the service would (:class:`ApiError`)."""
    if not isinstance(body, dict):
        raise ApiError(400, "Failed to parse the request body as JSON: expected an object")
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise validation_failed(
            "name",
            "must only contain lowercase alphanumeric characters or '-' and have a length of 32 characters maximum",
        )
    if body.get("type") not in ENDPOINT_TYPES:
        raise validation_failed(
            "type", f"unknown variant `{body.get('type')}`, expected one of {', '.join(ENDPOINT_TYPES)}"
        )
    for section, keys in (
        ("provider", ("vendor", "region")),
        ("compute", ("accelerator", "instanceType", "instanceSize")),
        ("model", ("repository", "framework")),
    ):
        part = body.get(section)
        if not isinstance(part, dict):
            raise validation_failed(section, "missing field")
        for key in keys:
            if not isinstance(part.get(key), str) or not part[key]:
                raise validation_failed(f"{section}.{key}", "missing field")
    if not isinstance(body["compute"].get("scaling"), dict):
        raise validation_failed("compute.scaling", "missing field")
    if "task" in body["model"] and not isinstance(body["model"]["task"], str):
        raise ApiError(400, "Failed to parse the request body as JSON: model.task: expected value")
    if "image" not in body["model"]:
        raise validation_failed("model.image", "missing field")
    check_shared(body)


def check_shared(body: dict[str, Any]) -> None:
    """Refuse what neither a create body nor a (partial) update body may hold."""
    compute = body.get("compute") or {}
    if "accelerator" in compute and compute["accelerator"] not in ACCELERATORS:
        raise validation_failed("compute.accelerator", f"unknown variant `{compute['accelerator']}`")
    scaling = compute.get("scaling") or {}
    lo, hi = scaling.get("minReplica"), scaling.get("maxReplica")
    for key, value in (("minReplica", lo), ("maxReplica", hi)):
        if key in scaling and (not _is_int(value) or value < 0):
            raise validation_failed(f"compute.scaling.{key}", "expected a non-negative integer")
    if _is_int(hi) and hi < 1:
        raise validation_failed("compute.scaling.maxReplica", "must be at least 1")
    if _is_int(lo) and _is_int(hi) and lo > hi:
        raise validation_failed("compute.scaling.minReplica", "must not exceed maxReplica")
    model = body.get("model") or {}
    image = model.get("image")
    if image is not None:
        if not isinstance(image, dict) or len(image) != 1 or next(iter(image)) not in IMAGE_VARIANTS:
            raise validation_failed("model.image", f"expected exactly one of {', '.join(IMAGE_VARIANTS)}")
        variant, config = next(iter(image.items()))
        if variant != "huggingface" and not (isinstance(config, dict) and config.get("url")):
            raise validation_failed(f"model.image.{variant}", "missing field `url`")
    path = (body.get("route") or {}).get("path")
    if path is not None and (not isinstance(path, str) or not path.startswith("/")):
        raise validation_failed("route.path", "must start with '/'")
