"""Data contracts: the rules a dataset's columns must keep, inferred once and then edited by people.

A contract is plain YAML (see :func:`to_yaml`) validated by pydantic, so a typo in an
edited file is an error that names the key. It is inferred from the first version's
profile: column types, nullability, observed numeric ranges (not for ids), allowed
categories (up to ``MAX_CATEGORIES`` values), uniqueness of id-like columns, the target.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

LogicalType = Literal["integer", "number", "string", "boolean", "datetime", "other"]
MAX_CATEGORIES = 50
_ID_NAME = re.compile(r"(^|[_\-\s])(id|uuid|guid|key)$|^id[_\-]", re.IGNORECASE)


class ColumnRule(BaseModel):
    """What one column must satisfy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: LogicalType
    nullable: bool = True
    min: int | float | None = None
    max: int | float | None = None
    allowed: list[str] | None = None
    unique: bool = False
    pii: str | None = Field(default=None, description="kind of personal data, if flagged")


class Contract(BaseModel):
    """The contract of one dataset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    target: str | None = None
    allow_extra_columns: bool = True
    columns: dict[str, ColumnRule]


def logical_type(arrow_type: pa.DataType) -> LogicalType:
    """Return the contract type of an Arrow type.

    >>> import pyarrow as pa
    >>> logical_type(pa.int32()), logical_type(pa.float64()), logical_type(pa.timestamp("s"))
    ('integer', 'number', 'datetime')
    """
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type):
        return "datetime"
    return "other"


def infer(name: str, schema: pa.Schema, profile: dict[str, Any], *, target: str | None,
          pii: dict[str, str]) -> Contract:
    """Return the contract a dataset's first version suggests."""
    if target is not None and target not in schema.names:
        raise InvalidInput(f"target column {target!r} is not in the data "
                           f"(columns: {', '.join(schema.names)})")
    rows = profile["num_rows"]
    columns = {}
    for field in schema:
        stats = profile["columns"][field.name]
        kind = logical_type(field.type)
        rule: dict[str, Any] = {"type": kind, "nullable": stats["missing"] > 0}
        id_like = bool(_ID_NAME.search(field.name))
        # Ranges and categories are values: none are written for personal-data columns.
        if kind in ("integer", "number") and stats.get("min") is not None and not id_like \
                and field.name not in pii:
            rule["min"], rule["max"] = stats["min"], stats["max"]
            if kind == "integer":
                rule["min"], rule["max"] = int(rule["min"]), int(rule["max"])
        if kind == "string" and field.name not in pii:
            distinct = stats["distinct"]
            if 0 < distinct <= MAX_CATEGORIES and distinct <= max(2, stats["count"] // 2):
                rule["allowed"] = sorted(value for value, _ in stats["top"])
        if kind in ("integer", "string") and rows > 1 and stats["distinct"] == rows and id_like:
            rule["unique"] = True
        if field.name in pii:
            rule["pii"] = pii[field.name]
        columns[field.name] = ColumnRule(**rule)
    return Contract(dataset=name, target=target, columns=columns)


def _comment_safe(text: str) -> str:
    """Return ``text`` fit for one YAML comment line: control characters shown escaped.

    >>> _comment_safe("a\\nb\\x1b[31m")
    'a\\\\nb\\\\x1b[31m'
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def to_yaml(contract: Contract, *, origin: str = "") -> str:
    """Return the contract as commented YAML that people can read, edit and commit."""
    import yaml

    header = [
        f"# Data contract of dataset {contract.dataset!r}"
        f"{' — ' + _comment_safe(origin) if origin else ''}.",
        "# Edit it and store it with: loopml data contract "
        f"{contract.dataset} --set contract.yaml",
        "# Per column: type (integer, number, string, boolean, datetime), nullable, min/max,",
        "# allowed (the only values a category may take), unique, pii (kind of personal data).",
        "",
    ]
    body = contract.model_dump(exclude_defaults=False)
    for rule in body["columns"].values():
        for key in ("min", "max", "allowed", "pii"):
            if rule[key] is None:
                del rule[key]
        if not rule["unique"]:
            del rule["unique"]
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(header) + text


def from_yaml(text: str, *, origin: str) -> Contract:
    """Parse and check a contract; errors name the key and what was expected."""
    from loopml.yamlfile import parse_yaml

    return parse_yaml(text, Contract, origin=f"{origin}: invalid contract",
                      shape="a mapping with dataset and columns")
