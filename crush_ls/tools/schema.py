"""A tool's input declared once: the attrs class the input is structured into
also gives the JSON schema the model sees (as Crush derives its schemas from
struct tags).

    @attrs.define
    class ViewInput:
        file_path: str = arg("Path of the file, relative to the workspace")
        offset: int = arg("0-based line to start at", default=0)

A field without a default is required. `X | None` is an optional `X`;
`Literal[...]` is a string enum; `list[T]` an array; a nested attrs class an
object. Extra schema keywords (`minItems`) go in as keyword arguments.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, Literal

import attrs

# The description shared by the tools that take one file.
FILE_PATH = "Path of the file, relative to the workspace"

_SCALARS = {str: "string", int: "integer", bool: "boolean", float: "number"}


def arg(description: str | None = None, *, default: Any = attrs.NOTHING,
        factory: Any = None, **schema: Any) -> Any:
    """An input field with its description (and extra JSON-schema keywords)."""
    metadata = {"description": description, "schema": schema}
    if factory is not None:
        return attrs.field(factory=factory, metadata=metadata)
    return attrs.field(default=default, metadata=metadata)


def _without_none(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [k for k in typing.get_args(kind) if k is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return kind


def _type_schema(kind: Any) -> dict[str, Any]:
    kind = _without_none(kind)
    origin = typing.get_origin(kind)
    if origin is Literal:
        return {"type": "string", "enum": list(typing.get_args(kind))}
    if origin is list:
        (item,) = typing.get_args(kind)
        return {"type": "array", "items": _type_schema(item)}
    if attrs.has(kind):
        return json_schema(kind)
    if kind in _SCALARS:
        return {"type": _SCALARS[kind]}
    raise TypeError(f"no JSON schema for {kind!r}")


def _field_schema(field: attrs.Attribute[Any], kind: Any) -> dict[str, Any]:
    base = _type_schema(kind)
    schema = {"type": base.pop("type"), **field.metadata.get("schema", {}), **base}
    if field.metadata.get("description"):
        schema["description"] = field.metadata["description"]
    return schema


@functools.cache
def json_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of an attrs input class (built once per class)."""
    hints = typing.get_type_hints(cls)
    fields = attrs.fields(cls)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: _field_schema(f, hints[f.name]) for f in fields},
    }
    required = [f.name for f in fields if f.default is attrs.NOTHING]
    if required:
        schema["required"] = required
    return schema
