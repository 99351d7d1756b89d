"""Run one inference batch in a process of its own, for tests that kill it: ``python -m`` this module
with the operator's arguments as JSON. The connections come from the environment (``AIRFLOW_CONN_*``)."""

from __future__ import annotations

import json
import sys

from airflow_provider_hfep.operators.inference import HuggingFaceEndpointInferenceOperator


class TaskInstanceStub:
    """What execute() needs from a task instance when called directly: XCom pushes, its identity, the try."""

    dag_id, task_id, run_id, map_index = "batch_child", "infer", "manual__1", -1

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.xcom[key] = value


def run(try_number: int = 1, map_index: int = -1, **kwargs):
    ti = TaskInstanceStub(try_number)
    ti.map_index = map_index  # another mapped instance: another task instance, another holder
    operator = HuggingFaceEndpointInferenceOperator(
        task_id="infer", endpoint_name=kwargs.pop("endpoint_name", "gen"), **kwargs
    )
    return operator.execute({"ti": ti}), ti.xcom


if __name__ == "__main__":
    print(json.dumps(run(**json.loads(sys.argv[1]))[0]))
