"""
The servers the emulated endpoints run, one module per engine family, and the registry that finds them.

Every module of this package is an engine family and declares ``ENGINES``, a tuple of :class:`Engine`:
the image kinds that run it, the routes its server has (404 elsewhere, as the real servers answer)
and how each answers, and the limits it enforces before answering. The registry imports every module
it finds here, so a new engine is one new module. What the models answer, in each API's shapes, is
shared: :mod:`airflow_provider_hfep.emulator.runners`.

A second implementation of the engines, independent of the client's
(:mod:`airflow_provider_hfep.inference.engines`): nothing here imports it. The module names are the
shared vocabulary: a test checks that an image kind runs the same family on both sides and that
every route the client sends is one the emulated server answers.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_hfep.emulator import runners

#: the image kind of a custom container; its engine also runs every image kind no module claims
FALLBACK_KIND = "custom"

#: answers a POST: the endpoint's task and the request body -> the answer's JSON
Answer = Callable[[str, Any], Any]
#: answers a GET from what the server knows of itself (:class:`Served`) -> the answer's JSON
Describe = Callable[["Served"], Any]
#: the events of a POST, from its body; ``None`` when the request does not ask to stream
Stream = Callable[[Any], list[dict[str, Any]] | None]


@dataclass(frozen=True)
class Served:
    """
    What one replica's server knows of itself, for the routes that describe it.

    :param model_id: the repository it serves.
    :param revision: the revision, if pinned.
    :param task: the endpoint's task.
    :param created: when it started (epoch seconds).
    :param max_concurrent_requests: requests in flight it takes before answering 429 (the emulator's
        capacity per replica).
    :param max_client_batch_size: inputs in one request it takes before answering 413 (TEI).
    """

    model_id: str
    revision: str | None
    task: str
    created: int
    max_concurrent_requests: int
    max_client_batch_size: int


@dataclass(frozen=True)
class Route:
    """
    One route of an engine's server.

    :param answer: answers a POST; ``None`` on a route that takes GETs only.
    :param stream: the events of a POST that streams; checked before ``answer``.
    :param describe: answers a GET (``/info``, ``/v1/models``), while the endpoint serves.
    """

    answer: Answer | None = None
    stream: Stream | None = None
    describe: Describe | None = None


def get(describe: Describe) -> Route:
    """Make a route that answers GETs only (a POST is a 404), from what the server knows of itself."""
    return Route(describe=describe)


def _models(served: Served) -> dict[str, Any]:
    """OpenAI's ``/v1/models``: the one model the server serves, by its repository."""
    entry = {"id": served.model_id, "object": "model", "created": served.created, "owned_by": "hfep-emulator"}
    return {"object": "list", "data": [entry]}


#: ``GET /v1/models`` as the servers with OpenAI routes answer it
MODELS = get(_models)


def post(answer: Callable[[Any], Any], stream: Stream | None = None) -> Route:
    """Make a route whose answer depends on the request body only, not on the endpoint's task."""
    return Route(answer=lambda task, body: answer(body), stream=stream)


def when_asked(events: Callable[[Any], list[dict[str, Any]]]) -> Stream:
    """Stream with ``events`` when the body says ``"stream": true``; answer otherwise."""
    return lambda body: events(body) if isinstance(body, dict) and body.get("stream") is True else None


#: ``POST /`` as every Hugging Face container serves it: the pipeline of the endpoint's task (and,
#: with ``"stream": true``, TGI's token events)
PIPELINE = Route(answer=runners.pipeline, stream=when_asked(runners.text_generation_stream))


def _any_batch(body: Any, limit: int) -> None:
    """Take any number of inputs (the servers other than TEI refuse none before answering)."""


@dataclass(frozen=True)
class Engine:
    """
    One emulated inference server.

    :param image_kinds: the keys of ``model.image`` that run it.
    :param routes: its routes, path -> :class:`Route`; any other path is a 404 (health routes are the
        data plane's, for every engine).
    :param check_batch: refuses a request past the server's limits before it is answered, raising
        :class:`~airflow_provider_hfep.emulator.runners.TooLarge` (TEI's 413); called with the body
        and the emulator's ``max_client_batch_size``.
    :param every_route: the user's own server (a custom container): every path is taken, and answered
        as the first engine having that route answers it (the registry gives it their routes); a path
        no engine has is a 404 once the request was taken.
    """

    image_kinds: tuple[str, ...]
    routes: Mapping[str, Route] = field(default_factory=dict)
    check_batch: Callable[[Any, int], None] = _any_batch
    every_route: bool = False

    def serves(self, path: str) -> bool:
        """Tell whether its server has this route."""
        return self.every_route or (path or "/") in self.routes

    def streamed(self, path: str, body: Any) -> list[dict[str, Any]] | None:
        """Make the events of a streaming request; ``None`` if the request is not one."""
        route = self.routes.get(path or "/")
        return route.stream(body) if route is not None and route.stream is not None else None

    def describe(self, path: str, served: Served) -> Any:
        """Answer a GET to ``path`` (``LookupError``: no such route, or one that takes POSTs only)."""
        route = self.routes.get(path or "/")
        if route is None or route.describe is None:
            raise LookupError(path)
        return route.describe(served)

    def answer(self, task: str, path: str, body: Any) -> Any:
        """Answer a POST to ``path`` of an endpoint whose task is ``task`` (``LookupError``: no such route)."""
        route = self.routes.get(path or "/")
        if route is None or route.answer is None:
            raise LookupError(path)
        return route.answer(task, body)


def _families() -> dict[str, tuple[Engine, ...]]:
    """Import every module of this package: its name -> the engines it declares."""
    families = {}
    for found in sorted(pkgutil.iter_modules(__path__), key=lambda found: found.name):
        module = importlib.import_module(f"{__name__}.{found.name}")
        engines = getattr(module, "ENGINES", None)
        if not isinstance(engines, tuple) or not all(isinstance(e, Engine) for e in engines):
            raise TypeError(f"{module.__name__} must declare ENGINES, a tuple of Engine")
        families[found.name] = engines
    every: dict[str, Route] = {}
    for engines in families.values():
        for engine in engines:
            for path, route in engine.routes.items():
                every.setdefault(path, route)
    return {
        name: tuple(
            dataclasses.replace(engine, routes={**every, **engine.routes}) if engine.every_route else engine
            for engine in engines
        )
        for name, engines in families.items()
    }


#: engine family (the module's name) -> its engines
FAMILIES: dict[str, tuple[Engine, ...]] = _families()
#: every engine, family by family
ENGINES: tuple[Engine, ...] = tuple(engine for engines in FAMILIES.values() for engine in engines)


def _by_kind() -> dict[str, Engine]:
    by_kind: dict[str, Engine] = {}
    for engine in ENGINES:
        for kind in engine.image_kinds:
            if kind in by_kind:
                raise ValueError(f"image kind {kind!r} is claimed by two engines")
            by_kind[kind] = engine
    return by_kind


_BY_KIND = _by_kind()


def engine_for(image_kind: str | None) -> Engine:
    """Return the server an image kind runs: the custom container's for one no module claims (or none)."""
    return _BY_KIND.get(image_kind or "", _BY_KIND[FALLBACK_KIND])


def family_of(image_kind: str | None) -> str:
    """Name the family (the module) of the server an image kind runs."""
    engine = engine_for(image_kind)
    return next(name for name, engines in FAMILIES.items() if any(engine is e for e in engines))
