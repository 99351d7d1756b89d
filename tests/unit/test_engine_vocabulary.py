"""
The client's engines and the emulator's speak one vocabulary.

They are two implementations that share no code (the emulator imports nothing from the client): an
engine family is a module of the same name on each side. Here, side by side: an image kind runs the
same family on both, every route the client sends for every (engine, task) is one that engine's
emulated server answers, and what it answers is what the client reads (structured output too, in each
engine's spelling). The README's engine table
names every engine, its image kinds and its tasks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_hfep.emulator import engines as emulated, runners
from airflow_provider_hfep.emulator.validation import IMAGE_VARIANTS as EMULATED_VARIANTS
from airflow_provider_hfep.endpoints.payloads import IMAGE_VARIANTS
from airflow_provider_hfep.inference import engines as client
from airflow_provider_hfep.inference.structured import OutputSchema, structured_task

README = (Path(__file__).parents[2] / "README.md").read_text()

CLIENT_KINDS = [kind for engine in client.ENGINES for kind in engine.image_kinds]
EMULATED_KINDS = [kind for engine in emulated.ENGINES for kind in engine.image_kinds]
#: every image kind either side or the API knows, none, and one nobody knows yet
KINDS = sorted({*CLIENT_KINDS, *EMULATED_KINDS, *IMAGE_VARIANTS, *EMULATED_VARIANTS}) + [
    None,
    "",
    "notYetKnown",
]

#: one input per task, and the task of a model that does it (what the pipeline routes answer by)
SAMPLES: dict[str, tuple[Any, str]] = {
    "text-generation": ("Once upon a time", "text-generation"),
    "chat-completion": ([{"role": "user", "content": "Hello"}], "text-generation"),
    "completion": ("Once upon a time", "text-generation"),
    "feature-extraction": ("a sentence to embed", "feature-extraction"),
    "embeddings": ("a sentence to embed", "feature-extraction"),
    "text-classification": ("I liked it", "text-classification"),
    "summarization": ("a long article about nightly batches", "summarization"),
    "fill-mask": ("the night is <mask>", "fill-mask"),
    "raw": ({"inputs": "Once upon a time"}, "text-generation"),
}


def _wire(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_both_sides_have_the_same_families():
    assert set(client.FAMILIES) == set(emulated.FAMILIES)
    assert len(client.FAMILIES) >= 5  # tgi, tei, openai_compatible, toolkit, custom: not an empty comparison


@pytest.mark.parametrize("kind", KINDS)
def test_an_image_kind_runs_the_same_family_on_both_sides(kind):
    assert client.family_of(kind) == emulated.family_of(kind), kind


def test_each_side_claims_the_same_image_kinds_and_the_api_accepts_them():
    assert sorted(CLIENT_KINDS) == sorted(EMULATED_KINDS)
    assert len(set(CLIENT_KINDS)) == len(CLIENT_KINDS)
    # A new image kind is new to the API too: both copies of the API's list must take it.
    assert set(IMAGE_VARIANTS) == set(EMULATED_VARIANTS)
    assert set(CLIENT_KINDS) <= set(IMAGE_VARIANTS)


def _served() -> list[tuple[str | None, str]]:
    pairs = [
        (kind, name)
        for engine in client.ENGINES
        for kind in engine.image_kinds
        for name in engine.serving("m")
    ]
    return pairs + [("notYetKnown", name) for name in client.engine_for("notYetKnown").serving("m")]


SERVED = _served()


@pytest.mark.parametrize(("kind", "name"), SERVED, ids=[f"{kind}-{name}" for kind, name in SERVED])
def test_every_route_the_client_sends_is_one_the_emulated_server_answers(kind, name):
    task = client.engine_for(kind).serving("org/model")[name]
    server = emulated.engine_for(kind)
    assert server.serves(task.path), f"{kind}: the client sends {name} to {task.path}, which its server lacks"
    route = server.routes.get(task.path)
    assert route is not None, f"{kind}: {task.path} is not one of its server's routes"
    assert route.answer is not None, f"{kind}: {task.path} takes no POST"

    item, model_task = SAMPLES[name]
    task.check(0, item, name)
    body = _wire(task.body(item, {}))
    server.check_batch(body, 32)
    one = task.parse(_wire(server.answer(model_task, task.path, body)))
    assert one not in (None, [], {}, "")
    if task.batch_body is not None and task.batch_parse is not None:
        body = _wire(task.batch_body([item, item + " again"], {}))
        server.check_batch(body, 32)
        many = task.batch_parse(_wire(server.answer(model_task, task.path, body)))
        assert len(many) == 2
        assert many[0] == one


def _structured() -> list[tuple[str, str]]:
    """Every (image kind, task) whose engine declares structured output for the task."""
    return [(engine.image_kinds[0], name) for engine in client.ENGINES for name in engine.structured_output]


STRUCTURED = _structured()
STRUCTURED_SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@pytest.mark.parametrize(("kind", "name"), STRUCTURED, ids=[f"{kind}-{name}" for kind, name in STRUCTURED])
def test_structured_output_as_the_client_spells_it_is_honoured_by_the_emulated_server(kind, name):
    engine = client.engine_for(kind)
    schema = OutputSchema(STRUCTURED_SCHEMA)
    task = structured_task(engine.serving("org/model")[name], engine, output_schema=schema)
    item, model_task = SAMPLES[name]
    body = _wire(task.body(item, {}))
    answer = emulated.engine_for(kind).answer(model_task, task.path, body)
    assert task.validate is not None
    assert task.validate(item, task.parse(_wire(answer))) == runners.json_value(
        STRUCTURED_SCHEMA, item_text(item)
    )


def item_text(item: Any) -> str:
    """The prompt the emulator answers for a sample input (a chat's messages, joined)."""
    return "\n".join(m["content"] for m in item) if isinstance(item, list) else item


@pytest.mark.parametrize("engine", client.ENGINES, ids=lambda engine: engine.name)
def test_the_routes_the_client_reads_are_ones_its_server_has(engine):
    for kind in engine.image_kinds:
        server = emulated.engine_for(kind)
        for path in filter(None, (engine.info_path, engine.models_path)):
            assert server.serves(path), f"{kind}: no {path}"


def _engine_table() -> list[str]:
    start = README.index("| Engine (image kinds) |")
    return [line for line in README[start:].split("\n\n")[0].splitlines()[2:]]


@pytest.mark.parametrize(
    "engine",
    [e for e in client.ENGINES if client.FALLBACK_KIND not in e.image_kinds],
    ids=lambda engine: engine.name,
)
def test_readme_engine_table_names_every_engine_its_image_kinds_and_tasks(engine):
    rows = [row for row in _engine_table() if engine.name in row.split("|")[1]]
    assert len(rows) == 1, f"README's engine table has no row (or several) for {engine.name}"
    kinds, tasks = rows[0].split("|")[1:3]
    assert all(f"`{kind}`" in kinds for kind in engine.image_kinds), (engine.name, kinds)
    assert all(re.search(rf"`{name}`", tasks) for name in engine.serving("m")), (engine.name, tasks)
