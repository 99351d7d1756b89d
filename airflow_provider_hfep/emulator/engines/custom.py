"""
A custom container, and any image kind the emulator does not know: the user's own server.

It may be anything, so it takes every route, answered as the engine having that route answers it.
"""

from __future__ import annotations

from airflow_provider_hfep.emulator.engines import FALLBACK_KIND, Engine

ENGINES = (Engine(image_kinds=(FALLBACK_KIND,), every_route=True),)
