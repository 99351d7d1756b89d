"""
Check JSON answers against the 2026 contract as published (``hf-endpoints-api-2026.json``, a copy of
``shared/reference``): the keys each schema requires, the type of every key it names, the values of
every enum whose values are known.

The contract is incomplete where the 2026 docs are (see its ``caveats``): unions whose members were
not rendered are checked against their inferred member when the contract names one, schemas of kind
``unknown`` are checked only for being JSON. :class:`Validator` counts what it could and could not
check, so a test can show that the check was not empty.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

CONTRACT: dict[str, Any] = json.loads((Path(__file__).parent / "hf-endpoints-api-2026.json").read_text())
SCHEMAS: dict[str, dict[str, Any]] = CONTRACT["schemas"]

# Two wrappers the docs leave undocumented while documenting their items (their notes say so): the
# answer is checked by finding the one list in it and checking each item.
ITEMS_OF_UNDOCUMENTED_WRAPPER = {"Replicas": "ReplicaStatus", "VendorQuotas": "VendorQuota"}

_SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
}


class Validator:
    """Collects the problems of the answers it is given, and counts what it checked."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.checked: Counter[str] = Counter()  # "key", "enum", "schema:<name>"
        self.unchecked: Counter[str] = Counter()  # schemas whose shape the contract does not give

    def check(self, value: Any, schema: str, where: str = "$") -> None:
        """Check ``value`` against the contract's ``schema``."""
        if schema in ITEMS_OF_UNDOCUMENTED_WRAPPER:
            self._check_wrapper(value, ITEMS_OF_UNDOCUMENTED_WRAPPER[schema], where)
            return
        spec = SCHEMAS[schema]
        self.checked[f"schema:{schema}"] += 1
        kind = spec["kind"]
        if kind == "object" or kind.startswith("allOf"):
            self._check_object(value, spec, schema, where)
        elif kind == "enum":
            self._check_enum(value, spec, schema, where)
        elif kind == "scalar":
            self._check_type(value, spec["type"], where)
        elif kind == "oneOf-by-key":
            self._check_one_of_by_key(value, spec, where)
        elif kind == "object-map":
            if not isinstance(value, dict) or not set(value) <= set(spec["keys"]):
                self.problems.append(
                    f"{where}: expected an object with keys among {spec['keys']}, got {value!r}"
                )
        elif kind == "unknown":
            self.unchecked[schema] += 1
            json.dumps(value)  # it must at least be JSON
        else:
            raise ValueError(f"schema {schema} has a kind this checker does not know: {kind}")

    def _check_wrapper(self, value: Any, item_schema: str, where: str) -> None:
        lists = (
            [(key, item) for key, item in value.items() if isinstance(item, list)]
            if isinstance(value, dict)
            else []
        )
        if len(lists) != 1:
            self.problems.append(
                f"{where}: expected an object holding one list of {item_schema}, got {value!r}"
            )
            return
        key, items = lists[0]
        for index, item in enumerate(items):
            self.check(item, item_schema, f"{where}.{key}[{index}]")

    def _check_object(self, value: Any, spec: dict[str, Any], schema: str, where: str) -> None:
        if not isinstance(value, dict):
            self.problems.append(f"{where}: {schema} must be an object, got {type(value).__name__}")
            return
        for prop in spec.get("properties") or []:
            name, at = prop["name"], f"{where}.{prop['name']}"
            if name not in value:
                if prop["required"]:
                    self.problems.append(f"{at}: required by {schema}, missing")
                continue
            self.checked["key"] += 1
            self._check_property(value[name], prop, at)

    def _check_property(self, value: Any, prop: dict[str, Any], where: str) -> None:
        kind = prop["type"]
        if value is None:
            if not (prop.get("nullable") or kind.startswith("oneOf")):
                self.problems.append(f"{where}: null where the contract says {kind}")
            return
        if kind == "ref":
            self.check(value, prop["ref"], where)
        elif kind.startswith("oneOf"):
            if prop.get("likelyRef"):  # "most likely null | X": the null case was handled above
                self.check(value, prop["likelyRef"], where)
        elif kind == "array":
            if not isinstance(value, list):
                self.problems.append(f"{where}: expected an array, got {value!r}")
                return
            for index, item in enumerate(value):
                self._check_property(
                    item, {"name": "", "required": True, **prop["items"]}, f"{where}[{index}]"
                )
        else:
            self._check_type(value, kind, where)
            if prop.get("format") == "date-time" and isinstance(value, str):
                try:
                    datetime.fromisoformat(value.replace("Z", "+00:00"))
                except ValueError:
                    self.problems.append(f"{where}: {value!r} is not a date-time")

    def _check_type(self, value: Any, kind: str, where: str) -> None:
        wanted = _SCALARS[kind]
        if isinstance(value, bool) and bool not in wanted:  # True is an int to Python, not to JSON
            self.problems.append(f"{where}: expected {kind}, got a boolean")
        elif not isinstance(value, wanted):
            self.problems.append(f"{where}: expected {kind}, got {type(value).__name__} {value!r}")

    def _check_enum(self, value: Any, spec: dict[str, Any], schema: str, where: str) -> None:
        self._check_type(value, spec.get("type", "string"), where)
        if spec.get("checkEnum") and spec.get("enum"):
            self.checked["enum"] += 1
            if value not in spec["enum"]:
                self.problems.append(f"{where}: {value!r} is not a {schema} ({spec['enum']})")

    def _check_one_of_by_key(self, value: Any, spec: dict[str, Any], where: str) -> None:
        members: dict[str, str] = spec["members"]
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in members:
            self.problems.append(f"{where}: expected exactly one key among {sorted(members)}, got {value!r}")
            return
        key, member = next(iter(value.items()))
        if members[key] in SCHEMAS:
            self.check(member, members[key], f"{where}.{key}")
        elif not isinstance(member, dict):
            self.problems.append(f"{where}.{key}: expected an object, got {member!r}")
