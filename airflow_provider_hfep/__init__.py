"""
Apache Airflow provider for Hugging Face Inference Endpoints.

The package root imports nothing: ``airflow_provider_hfep.endpoints`` (the pure API client) and the
Airflow glue (``hooks``, later ``operators``, ``sensors``, ``triggers``) are imported where used.
"""

__version__ = "0.1.0"
