"""The JSON Schema of a customer's YAML (``mhub config schema``), for editors to validate and
complete while typing; ``configs/customer.schema.json`` is its committed copy.

Made from the same pydantic models that validate the files (:class:`app.config.Customer`, and
each check kind's settings under ``checks:``), so it cannot drift from them. It is the shape
only: what needs the other files, the environment or the clock (an account alias listed by two
customers, a routing variable that is unset, a ``suppress`` rule that has ended) is still
``mhub config check``'s to say.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

from app.config import Customer, format_window
from checks import kinds
from checks.registry import REGISTRY

DIALECT = "https://json-schema.org/draft/2020-12/schema"
FILE = "configs/customer.schema.json"
"""Where the committed copy lives, relative to the checkout; the example YAMLs point at it."""
REGENERATE = f"mhub config schema > {FILE}"
WINDOW = {
    "type": "string",
    "pattern": "^\\s*[0-9]+[mhdMHD]\\s*$",
    "description": "A length of time: a number and a unit, m (minutes), h (hours) or d (days).",
    "examples": ["30m", "12h", "7d"],
}


class _HubSchema(GenerateJsonSchema):
    """pydantic's schema, with lengths of time written as the YAML writes them (``12h``, not
    ISO 8601's ``PT12H``) and dates as the text they are in YAML."""

    def timedelta_schema(self, schema: core_schema.TimedeltaSchema) -> dict[str, Any]:
        return dict(WINDOW)

    def encode_default(self, dft: Any) -> Any:
        if isinstance(dft, timedelta):
            return format_window(dft)
        return super().encode_default(dft)

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> dict[str, Any]:
        return {
            "type": "string",
            "description": "A date and time in the customer's time zone, such as "
            '"2026-12-12 22:00".',
        }

    def date_schema(self, schema: core_schema.DateSchema) -> dict[str, Any]:
        return {"type": "string", "description": "A date, such as 2027-03-31."}


def _checks_model() -> type[BaseModel]:
    """``checks:``: each kind's settings, by name (``rds:`` with nothing under it: defaults)."""
    fields: dict[str, Any] = {
        kind.name: (
            REGISTRY[kind.name].Settings | None,
            Field(default=None, description=f"{kind.title}: {kind.about} (docs/checks.md)."),
        )
        for kind in kinds.KINDS
    }
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Checks",
        __config__=ConfigDict(extra="forbid"),
        __doc__="Settings of each check kind, for every account of the customer that runs it; "
        "a kind left out keeps its defaults (docs/checks.md).",
        **fields,
    )


def customer_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one ``configs/customers/<id>.yaml``."""
    checks = _checks_model()
    _, top = models_json_schema(
        [(Customer, "validation"), (checks, "validation")], schema_generator=_HubSchema
    )
    names = {key: _plain(key) for key in top["$defs"]}
    top = _renamed(top, {f"#/$defs/{old}": f"#/$defs/{new}" for old, new in names.items()})
    defs: dict[str, Any] = {names[key]: value for key, value in top["$defs"].items()}
    root: dict[str, Any] = defs.pop("Customer")
    for setting in defs[checks.__name__]["properties"].values():
        setting.pop("default", None)  # left out means the defaults; null is only allowed
    root["properties"]["checks"] = {
        "$ref": f"#/$defs/{checks.__name__}",
        "description": defs[checks.__name__]["description"],
    }
    # accounts listed, discovered from AWS Organizations, or both (docs/organizations.md)
    root["anyOf"] = [{"required": ["accounts"]}, {"required": ["organization"]}]
    return {
        "$schema": DIALECT,
        "title": "Monitoring Hub customer",
        "description": "One customer of Monitoring Hub: configs/customers/<id>.yaml. Every key "
        "is in docs/configuration.md; `mhub config check` validates what this schema cannot "
        "(other files, the environment, the time).",
        **{k: v for k, v in root.items() if k not in ("title", "description")},
        "$defs": dict(sorted(defs.items())),
    }


def _plain(key: str) -> str:
    """``checks__rds__Settings`` (pydantic's name for one of several ``Settings`` classes) →
    ``RdsSettings``, as an editor shows it."""
    if "__" not in key:
        return key
    *_, module, name = key.split("__")
    return module.title() + name


def _renamed(node: Any, refs: dict[str, str]) -> Any:
    """``node`` with every ``$ref`` in ``refs`` pointed at its new name."""
    if isinstance(node, dict):
        return {k: refs.get(v, v) if k == "$ref" else _renamed(v, refs) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(item, refs) for item in node]
    return node


def schema_text() -> str:
    """What ``mhub config schema`` prints and ``configs/customer.schema.json`` holds."""
    return json.dumps(customer_schema(), indent=2, ensure_ascii=False) + "\n"
