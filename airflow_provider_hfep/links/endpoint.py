"""Extra link from a task to its endpoint's page in the Inference Endpoints UI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

ENDPOINT_PAGE = "https://endpoints.huggingface.co/{namespace}/endpoints/{name}"


class HuggingFaceEndpointLink(BaseOperatorLink):
    """
    "Hugging Face Endpoint": the page of the endpoint a task acted on.

    The task records the endpoint (namespace and name, not the URL) in XCom as soon as it knows them,
    before any wait or deferral, so the link is there even while the task is deferred or after it failed.
    """

    name = "Hugging Face Endpoint"
    key = "hf_endpoint"

    @classmethod
    def persist(cls, context: Context, namespace: str, endpoint_name: str) -> None:
        context["ti"].xcom_push(key=cls.key, value={"namespace": namespace, "name": endpoint_name})

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value: dict[str, Any] | None = XCom.get_value(key=self.key, ti_key=ti_key)
        if not value:
            return ""
        return ENDPOINT_PAGE.format(namespace=value["namespace"], name=value["name"])
