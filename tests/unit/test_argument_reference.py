"""
Each argument is declared once and everything else follows from it, or is checked against it.

The endpoint's arguments are declared on :class:`EndpointSpec`; the update's dataclass, the create and
update operators' signatures, template fields and docstrings are made from the declaration, and the
README documents every argument of every public operator, sensor and trigger (checked here).
"""

from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import fields
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_provider_hfep.endpoints import EndpointUpdate
from airflow_provider_hfep.endpoints.payloads import endpoint_arguments
from airflow_provider_hfep.get_provider_info import get_provider_info
from airflow_provider_hfep.operators.endpoint import (
    HuggingFaceCreateEndpointOperator,
    HuggingFaceEndpointBaseOperator,
    HuggingFaceEndpointStartOperator,
    HuggingFaceUpdateEndpointOperator,
)

README = (Path(__file__).parents[2] / "README.md").read_text()

# The arguments of 0.4.0 (174224a), which user DAGs pass: each must stay accepted, default unchanged.
CREATE_ARGUMENTS_0_4 = {
    **dict.fromkeys(
        ["repository", "framework", "accelerator", "instance_size", "instance_type", "region", "vendor"],
        inspect.Parameter.empty,
    ),
    "if_exists": "fail",
    "update_settle_seconds": 15,
    "min_replica": 1,
    "max_replica": 1,
    "type": "authenticated",
    **dict.fromkeys(
        [
            "scaling_metric",
            "scaling_threshold",
            "scale_to_zero_timeout",
            "revision",
            "task",
            "custom_image",
            "container_registry_username",
            "container_registry_password",
            "container_command",
            "container_args",
            "env",
            "secrets",
            "domain",
            "path",
            "cache_http_responses",
            "tags",
            "private_link_account_id",
            "private_link_shared",
        ]
    ),
}
UPDATE_ARGUMENTS_0_4 = {
    "if_updating": "fail",
    "update_settle_seconds": 15,
    **dict.fromkeys(
        [
            "accelerator",
            "instance_size",
            "instance_type",
            "min_replica",
            "max_replica",
            "scale_to_zero_timeout",
            "scaling_metric",
            "scaling_threshold",
            "repository",
            "framework",
            "revision",
            "task",
            "custom_image",
            "container_command",
            "container_args",
            "env",
            "secrets",
            "domain",
            "path",
            "cache_http_responses",
            "tags",
        ]
    ),
}
HARDWARE = {
    "framework": "pytorch",
    "accelerator": "cpu",
    "instance_size": "x2",
    "instance_type": "intel-icl",
    "region": "us-east-1",
    "vendor": "aws",
}


@pytest.mark.parametrize(
    ("operator", "accepted"),
    [
        (HuggingFaceCreateEndpointOperator, CREATE_ARGUMENTS_0_4),
        (HuggingFaceUpdateEndpointOperator, UPDATE_ARGUMENTS_0_4),
    ],
)
def test_operators_accept_every_argument_they_accepted_with_the_same_default(operator, accepted):
    parameters = inspect.signature(operator.__init__).parameters
    found = {name: parameters[name].default for name in accepted if name in parameters}
    assert found == accepted
    assert all(parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in accepted)


def test_update_dataclass_has_the_fields_declared_updatable():
    declared = {name for name, *_ in endpoint_arguments(update=True)}
    assert {f.name for f in fields(EndpointUpdate)} == declared
    assert {"region", "vendor", "type", "name"}.isdisjoint(declared)


@pytest.mark.parametrize(
    ("operator", "update"),
    [(HuggingFaceCreateEndpointOperator, False), (HuggingFaceUpdateEndpointOperator, True)],
)
def test_operator_signature_templates_and_docstring_follow_the_declaration(operator, update):
    declared = endpoint_arguments(update=update)
    parameters = inspect.signature(operator.__init__).parameters
    for name, _, doc, templated in declared:
        assert name in parameters
        assert (name in operator.template_fields) is templated, name
        documented = re.findall(rf":param {name}: (.*)", operator.__doc__)
        assert documented == [doc + (" (templated)" if templated else "")], name
    assert operator.__doc__.count(":return:") == 1


def test_default_args_fill_the_declared_arguments():
    with DAG("defaults", schedule=None, start_date=pendulum.datetime(2026, 1, 1), default_args=HARDWARE):
        create = HuggingFaceCreateEndpointOperator(
            task_id="create", endpoint_name="e", repository="openai-community/gpt2", min_replica=0
        )
    assert {name: create.spec_arguments[name] for name in HARDWARE} == HARDWARE
    assert create.spec_arguments["min_replica"] == 0
    assert create.spec_arguments["max_replica"] == 1


def test_a_missing_required_argument_is_named():
    with pytest.raises(TypeError, match="repository"):
        HuggingFaceCreateEndpointOperator(task_id="create", endpoint_name="e", **HARDWARE)


def test_an_unknown_argument_is_still_refused():
    with pytest.raises(TypeError, match="instance_sise"):
        HuggingFaceCreateEndpointOperator(
            task_id="create",
            endpoint_name="e",
            repository="openai-community/gpt2",
            **HARDWARE,
            instance_sise="x1",
        )


def _public_classes() -> list[type]:
    info = get_provider_info()
    modules = [
        m for kind in ("operators", "sensors", "triggers") for e in info[kind] for m in e["python-modules"]
    ]
    found = []
    for module in map(importlib.import_module, modules):
        found += [
            cls
            for name, cls in vars(module).items()
            if inspect.isclass(cls) and cls.__module__ == module.__name__ and name.startswith("HuggingFace")
        ]
    return found


def _readme_section(heading_part: str) -> str:
    sections = re.split(r"\n(?=#{2,4} )", README)
    return "\n".join(s for s in sections if heading_part in s.splitlines()[0])


@pytest.mark.parametrize("cls", _public_classes(), ids=lambda cls: cls.__name__)
def test_readme_documents_every_argument(cls):
    shared = {HuggingFaceEndpointBaseOperator, HuggingFaceEndpointStartOperator}
    heading = "Arguments every lifecycle operator takes" if cls in shared else f"`{cls.__name__}`"
    section = _readme_section(heading)
    assert section, f"README has no section for {cls.__name__}"
    own = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "kwargs")]
    assert own
    undocumented = [n for n in own if not re.search(rf"`{n}(`|=)", section)]
    assert undocumented == []
