"""Provider registration (entry point ``apache_airflow_provider``); read by Airflow without importing hooks."""

from __future__ import annotations

from typing import Any

from airflow_provider_hfep import __version__


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow: its modules, extra link and connection type (with its form)."""
    return {
        "package-name": "airflow-provider-hfep",
        "name": "Hugging Face Inference Endpoints",
        "description": "Manage Hugging Face Inference Endpoints (create, update, pause, resume, scale to zero, "
        "delete), wait for them without holding a worker slot, and run batch inference on them.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Hugging Face Inference Endpoints",
                "external-doc-url": "https://huggingface.co/docs/inference-endpoints/index",
                "tags": ["ai"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Hugging Face Inference Endpoints",
                "python-modules": ["airflow_provider_hfep.hooks.endpoint"],
            }
        ],
        "operators": [
            {
                "integration-name": "Hugging Face Inference Endpoints",
                "python-modules": [
                    "airflow_provider_hfep.operators.budget",
                    "airflow_provider_hfep.operators.endpoint",
                    "airflow_provider_hfep.operators.inference",
                    "airflow_provider_hfep.operators.logs",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Hugging Face Inference Endpoints",
                "python-modules": ["airflow_provider_hfep.sensors.endpoint"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Hugging Face Inference Endpoints",
                "python-modules": [
                    "airflow_provider_hfep.triggers.budget",
                    "airflow_provider_hfep.triggers.endpoint",
                ],
            }
        ],
        "extra-links": ["airflow_provider_hfep.links.endpoint.HuggingFaceEndpointLink"],
        "config": {
            "hf_inference_endpoints": {
                "description": "The provider's place in Airflow's UI.",
                "options": {
                    "ui_page": {
                        "description": "Add the Inference Endpoints page to the UI (Browse menu; Airflow 3.1+). "
                        "Read by the API server when it starts.",
                        "version_added": "0.5.0",
                        "type": "boolean",
                        "example": None,
                        "default": "True",
                    }
                },
            }
        },
        "connection-types": [
            {
                "connection-type": "hf_inference_endpoints",
                "hook-class-name": "airflow_provider_hfep.hooks.endpoint.HuggingFaceEndpointHook",
                "hook-name": "Hugging Face Inference Endpoints",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login"],
                    "relabeling": {"password": "Token", "host": "API URL"},
                    "placeholders": {
                        "password": "hf_... (a token with Inference Endpoints write access)",
                        "host": "https://api.endpoints.huggingface.cloud",
                    },
                },
                "conn-fields": {
                    "namespace": {
                        "label": "Namespace",
                        "description": "User or organisation owning the endpoints. Empty: the token's user.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "hub_url": {
                        "label": "Hub URL",
                        "description": "Base of the Hub API, used to resolve the token's user (whoami).",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "https://huggingface.co",
                            "format": "url",
                        },
                    },
                    "catalog_url": {
                        "label": "Catalog URL",
                        "description": "Base of the model catalog API (deploy from the catalog).",
                        "schema": {
                            "type": ["string", "null"],
                            "default": "https://endpoints.huggingface.co/api/v1/catalog",
                            "format": "url",
                        },
                    },
                    "timeout": {
                        "label": "Timeout (s)",
                        "description": "Seconds each HTTP request may take.",
                        "schema": {"type": ["number", "null"], "default": 30, "minimum": 1},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "description": "How often a request that failed transiently (429, 500, 502, 503, 504, network) is repeated.",
                        "schema": {"type": ["integer", "null"], "default": 4, "minimum": 0},
                    },
                    "verify": {
                        "label": "Verify TLS",
                        "description": "Verify the API's TLS certificate (on by default). In the JSON extra it may also be a CA bundle path, e.g. for a company's TLS proxy.",
                        "schema": {"type": ["boolean", "null"], "default": True},
                    },
                    "allow_insecure_http": {
                        "label": "Allow plain http",
                        "description": "Allow an http:// API URL on another machine (the token would travel unencrypted).",
                        "schema": {"type": ["boolean", "null"], "default": False},
                    },
                },
            }
        ],
    }


def connection_type() -> dict[str, Any]:
    """Return the ``hf_inference_endpoints`` connection type: its form's fields and their behaviour."""
    [declared] = get_provider_info()["connection-types"]
    return declared
