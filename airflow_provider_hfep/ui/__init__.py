"""
The "Inference Endpoints" page of the Airflow UI: an Airflow 3 plugin.

A FastAPI app the API server mounts, and a nav entry on 3.1 and later.

``nights`` and ``chart`` are pure (no Airflow import): the nights from the cost reports, the cost per
night and endpoint, and its SVG chart. ``records`` reads the reports from Airflow's metadata database,
``listing`` reads the endpoints through the hook (cached briefly), ``app`` serves the page behind
Airflow's auth manager, ``plugin`` registers it.
"""
