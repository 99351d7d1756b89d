"""
The emulated model catalog: ready-made recipes a user deploys by repository or recipe id.

Served under ``/api/v1/catalog`` (the 2.4 line of ``huggingface_hub`` calls ``list`` and
``model/{repo_id}/deploy`` / ``recipe/{recipe_id}/deploy`` there) and, for ``huggingface_hub`` 1.x
to 2.0, under ``/api/catalog`` (``repo-list`` and ``deploy``). A deployment is an ordinary create in
the management API: same quota, same state clock.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request

from airflow_provider_hfep.emulator.management import (
    TheScenario,
    TheWorld,
    bearer_user,
    check_quota,
    json_body,
)
from airflow_provider_hfep.emulator.validation import NAME_RULE, ApiError

router = APIRouter(prefix="/api/v1/catalog")
legacy_router = APIRouter(prefix="/api/catalog")

_TGI = "ghcr.io/huggingface/text-generation-inference:3.1.1"
_TEI = "ghcr.io/huggingface/text-embeddings-inference:cpu-1.7"
CATALOG: list[dict[str, Any]] = [
    {
        "repoId": "openai-community/gpt2",
        "modelName": "gpt2",
        "authorName": "openai-community",
        "license": "mit",
        "task": "text-generation",
        "createdAt": "2024-02-19T10:57:45.000Z",
        "recipes": [
            {
                "publicId": "gpt2-cpu",
                "accelerator": "cpu",
                "engineType": "huggingface",
                "compute": ("aws", "us-east-1", "intel-spr", "x2"),
                "image": {"huggingface": {}},
            }
        ],
    },
    {
        "repoId": "HuggingFaceH4/zephyr-7b-beta",
        "modelName": "zephyr-7b-beta",
        "authorName": "HuggingFaceH4",
        "license": "mit",
        "task": "text-generation",
        "createdAt": "2023-10-26T11:25:49.000Z",
        "recipes": [
            {
                "publicId": "zephyr-7b-beta-tgi-l4",
                "accelerator": "gpu",
                "engineType": "tgi",
                "compute": ("aws", "us-east-1", "nvidia-l4", "x1"),
                "image": {"tgi": {"url": _TGI, "healthRoute": "/health", "port": 80}},
            }
        ],
    },
    {
        "repoId": "BAAI/bge-small-en-v1.5",
        "modelName": "bge-small-en-v1.5",
        "authorName": "BAAI",
        "license": "mit",
        "task": "feature-extraction",
        "createdAt": "2023-09-12T05:24:31.000Z",
        "recipes": [
            {
                "publicId": "bge-small-en-v1-5-tei-cpu",
                "accelerator": "cpu",
                "engineType": "tei",
                "compute": ("aws", "us-east-1", "intel-spr", "x2"),
                "image": {"tei": {"url": _TEI, "healthRoute": "/health", "port": 80}},
            }
        ],
    },
]


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    recipes = [
        {"publicId": r["publicId"], "accelerator": r["accelerator"], "engineType": r["engineType"]}
        for r in entry["recipes"]
    ]
    return {**{k: v for k, v in entry.items() if k != "recipes"}, "recipes": recipes}


@router.get("/list")
async def list_catalog(
    accelerator: str | None = None,
    engine: str | None = None,
    license: str | None = None,
    task: str | None = None,
    search: str | None = None,
    limit: int = 50,
) -> dict[str, Any]:
    items = [
        _public(entry)
        for entry in CATALOG
        if (task is None or entry["task"] == task)
        and (license is None or entry["license"] == license)
        and (search is None or search.lower() in entry["repoId"].lower())
        and any(
            (accelerator is None or r["accelerator"] == accelerator)
            and (engine is None or r["engineType"] == engine)
            for r in entry["recipes"]
        )
    ]
    return {"items": items[:limit]}


async def _deploy_body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("namespace"), str):
        raise ApiError(400, "namespace is required")
    return body


def _recipe_for(entry: dict[str, Any], accelerator: Any) -> dict[str, Any]:
    recipes = [r for r in entry["recipes"] if accelerator is None or r["accelerator"] == accelerator]
    if not recipes:
        raise ApiError(400, f"No recipe of {entry['repoId']} runs on {accelerator}")
    return recipes[0]


def _entry(repo_id: Any) -> dict[str, Any]:
    entry = next((e for e in CATALOG if e["repoId"] == repo_id), None)
    if entry is None:
        raise ApiError(404, f"Model {repo_id} is not in the catalog")
    return entry


def _deploy(
    request: Request,
    world: TheWorld,
    scenario: TheScenario,
    entry: dict[str, Any],
    recipe: dict[str, Any],
    namespace: str,
    name: Any,
) -> dict[str, Any]:
    user = bearer_user(request, world)
    if user is None:
        raise ApiError(401, "Invalid credentials in Authorization header")
    if not user.may_act_in(namespace):
        raise ApiError(403, f"You don't have access to namespace {namespace}")
    if name is None:
        suffix = hashlib.sha1(f"{namespace}/{recipe['publicId']}".encode()).hexdigest()[:4]
        name = f"{entry['modelName'][:27].lower().replace('.', '-').strip('-')}-{suffix}"
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise ApiError(400, f"VALIDATION_FAILED: config.name: {name!r} is not a valid endpoint name")
    if world.get(namespace, name) is not None:
        raise ApiError(409, "Endpoint name already exists")
    vendor, region, instance_type, size = recipe["compute"]
    config = {
        "name": name,
        "type": "authenticated",
        "provider": {"vendor": vendor, "region": region},
        "compute": {
            "accelerator": recipe["accelerator"],
            "instanceType": instance_type,
            "instanceSize": size,
            "scaling": {"minReplica": 1, "maxReplica": 1},
        },
        "model": {
            "repository": entry["repoId"],
            "framework": "pytorch",
            "task": entry["task"],
            "image": recipe["image"],
            "fromCatalog": True,
        },
        "tags": ["catalog"],
    }
    check_quota(world, namespace, config)
    endpoint = world.create(namespace, config, user.name)
    scenario.fire("create", endpoint)
    return {"endpoint": world.to_json(endpoint)}


@router.post("/model/{repo_id:path}/deploy")
async def deploy_model(
    repo_id: str, request: Request, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    entry = _entry(repo_id)
    body = await _deploy_body(request)
    recipe = _recipe_for(entry, body.get("accelerator"))
    name = (body.get("config") or {}).get("name")
    return _deploy(request, world, scenario, entry, recipe, body["namespace"], name)


@router.post("/recipe/{recipe_id}/deploy")
async def deploy_recipe(
    recipe_id: str, request: Request, world: TheWorld, scenario: TheScenario
) -> dict[str, Any]:
    body = await _deploy_body(request)
    name = (body.get("config") or {}).get("name")
    for entry in CATALOG:
        for recipe in entry["recipes"]:
            if recipe["publicId"] == recipe_id:
                return _deploy(request, world, scenario, entry, recipe, body["namespace"], name)
    raise ApiError(404, f"Recipe {recipe_id} is not in the catalog")


@legacy_router.get("/repo-list")
async def legacy_repo_list() -> dict[str, Any]:
    """List the catalog's repositories, as ``huggingface_hub`` 1.x and 2.0 read them."""
    return {"models": [entry["repoId"] for entry in CATALOG]}


@legacy_router.post("/deploy")
async def legacy_deploy(request: Request, world: TheWorld, scenario: TheScenario) -> dict[str, Any]:
    """Deploy ``{"namespace", "repoId", "endpointName"?, "accelerator"?}``, as 1.x and 2.0 send it."""
    body = await _deploy_body(request)
    entry = _entry(body.get("repoId"))
    recipe = _recipe_for(entry, body.get("accelerator"))
    return _deploy(request, world, scenario, entry, recipe, body["namespace"], body.get("endpointName"))
