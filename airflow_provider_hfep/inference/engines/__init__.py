"""
The engines an endpoint can run, one module per engine family, and the registry that finds them.

Every module of this package is an engine family and declares ``ENGINES``, a tuple of :class:`Engine`:
the image kinds (``model.image``'s key) that run it and the tasks it serves, with their routes and
shapes (:mod:`airflow_provider_hfep.inference.shapes`). The registry imports every module it finds
here, so a new engine is one new module (and its twin in the emulator,
:mod:`airflow_provider_hfep.emulator.engines`, under the same module name: a test checks the two
agree). An image kind no module claims runs the engine of :data:`FALLBACK_KIND`, the custom
container's.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_provider_hfep.inference.shapes import InferenceTask
    from airflow_provider_hfep.inference.structured import Spelling

#: the image kind of a custom container; its engine also runs every image kind no module claims
FALLBACK_KIND = "custom"


@dataclass(frozen=True)
class Engine:
    """
    One inference server an endpoint can run.

    :param name: the engine's name in messages (``TGI``, ``vLLM``, ...).
    :param image_kinds: the keys of ``model.image`` that run it.
    :param tasks: the tasks it serves, each with the route and the shapes its server takes, in the
        order messages list them.
    :param info_path: the route telling the server's limits (``max_concurrent_requests``,
        ``max_client_batch_size``, ``max_batch_tokens``), which the batch reads to start at them;
        ``None`` where it has none.
    :param models_path: the route listing the model name its OpenAI routes take, which the inference
        operator reads before the batch; ``None`` where the server does not check the name.
    :param names_model: its OpenAI routes name the endpoint's model (see :meth:`InferenceTask.naming`);
        otherwise they keep huggingface_hub's name.
    :param checks_model_task: a task the endpoint's model cannot do (its ``model.task``) is refused;
        not on a custom container, the user's own server, which may do anything.
    """

    name: str
    image_kinds: tuple[str, ...]
    tasks: tuple[InferenceTask, ...]
    info_path: str | None = None
    models_path: str | None = None
    names_model: bool = False
    checks_model_task: bool = True
    structured_output: Mapping[str, Spelling] = field(default_factory=dict)

    def serving(self, model: str) -> dict[str, InferenceTask]:
        """Return the tasks it serves by name, their OpenAI bodies naming ``model`` where it names one."""
        return {task.name: task.naming(model) if self.names_model else task for task in self.tasks}


def _families() -> dict[str, tuple[Engine, ...]]:
    """Import every module of this package: its name -> the engines it declares."""
    families = {}
    for found in sorted(pkgutil.iter_modules(__path__), key=lambda found: found.name):
        module = importlib.import_module(f"{__name__}.{found.name}")
        engines = getattr(module, "ENGINES", None)
        if not isinstance(engines, tuple) or not all(isinstance(e, Engine) for e in engines):
            raise TypeError(f"{module.__name__} must declare ENGINES, a tuple of Engine")
        families[found.name] = engines
    return families


#: engine family (the module's name) -> its engines
FAMILIES: dict[str, tuple[Engine, ...]] = _families()
#: every engine, family by family
ENGINES: tuple[Engine, ...] = tuple(engine for engines in FAMILIES.values() for engine in engines)


def _by_kind() -> dict[str, Engine]:
    by_kind: dict[str, Engine] = {}
    for engine in ENGINES:
        for kind in engine.image_kinds:
            if kind in by_kind:
                raise ValueError(f"image kind {kind!r} is claimed by {by_kind[kind].name} and {engine.name}")
            by_kind[kind] = engine
    return by_kind


_BY_KIND = _by_kind()


def engine_for(image_kind: str | None) -> Engine:
    """Return the engine an image kind runs: the custom container's for one no module claims (or none)."""
    return _BY_KIND.get(image_kind or "", _BY_KIND[FALLBACK_KIND])


def family_of(image_kind: str | None) -> str:
    """Name the family (the module) of the engine an image kind runs."""
    engine = engine_for(image_kind)
    return next(name for name, engines in FAMILIES.items() if any(engine is e for e in engines))
