"""
Apache Airflow provider for Hugging Face Inference Endpoints.

The package root imports nothing, so that Airflow reads the provider's registration cheaply:
``endpoints`` and ``inference`` (the pure client layer, no Airflow import) and the Airflow glue
(``hooks``, ``operators``, ``sensors``, ``triggers``, ``links``, ``window``) are imported where used.
"""

__version__ = "0.4.0"
