"""
OpenLineage for batch inference: the files it read and wrote, and the endpoint and model that answered.

Imported only by :meth:`HuggingFaceEndpointInferenceOperator.get_openlineage_facets_on_complete`, which
the OpenLineage provider calls when it is installed: nothing here is needed without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from airflow.providers.common.compat.openlineage.facet import Dataset, RunFacet
from airflow.providers.openlineage.extractors import OperatorLineage

from airflow_provider_hfep.inference.results import store_scheme

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


@attrs.define
class HuggingFaceEndpointRunFacet(RunFacet):
    """
    The Inference Endpoint a batch ran on, and the model it served.

    :param endpoint: the endpoint's name.
    :param namespace: its namespace (user or organisation).
    :param repository: the model repository it served.
    :param revision: the model revision, if pinned.
    :param engine: the serving engine: the image kind (``tgi``, ``tei``, ``vllm``, ...), if known.
    :param task: the inference task the batch sent.
    """

    endpoint: str
    namespace: str
    repository: str
    revision: str | None
    engine: str | None
    task: str


def dataset(path: ObjectStoragePath) -> Dataset:
    """Name a file as OpenLineage does: ``s3://bucket`` and the key, or ``file`` and the path."""
    scheme = store_scheme(path)
    if scheme == "file":
        return Dataset(namespace="file", name=path.path)
    bucket, _, key = path.path.partition("/")
    return Dataset(namespace=f"{scheme}://{bucket}", name=key)


def batch_lineage(
    ran_on: dict[str, Any] | None, input_path: ObjectStoragePath | None, output_path: ObjectStoragePath | None
) -> OperatorLineage:
    """Describe one batch: ``ran_on`` holds the facet's fields (None: the batch never reached an endpoint)."""
    return OperatorLineage(
        inputs=[dataset(input_path)] if input_path is not None else [],
        outputs=[dataset(output_path)] if output_path is not None else [],
        run_facets={"huggingface_endpoint": HuggingFaceEndpointRunFacet(**ran_on)} if ran_on else {},
    )
