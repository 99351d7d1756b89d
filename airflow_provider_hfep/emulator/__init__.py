"""
A local emulator of the Hugging Face cloud, for local development and for tests (yours and ours).

.. code-block:: python

    from airflow_provider_hfep.emulator import Emulator

    with Emulator(deploy_seconds=0.5) as cloud:
        cloud.url  # management API, Hub and data planes, all on 127.0.0.1
        cloud.token  # a valid token ("hf_demo_token" for user "demo")
        cloud.airflow_connection()  # the JSON of an Airflow connection pointing at it

:class:`Emulator` (:mod:`.process`) runs ``hfep-emulator`` in a child process and drives its control
API; :mod:`.settings` declares its knobs; :mod:`.app` wires the emulated service. It imports nothing
from the provider's client layer.
"""

from __future__ import annotations

from airflow_provider_hfep.emulator.process import Emulator
from airflow_provider_hfep.emulator.settings import Settings

__all__ = ["Emulator", "Settings"]
