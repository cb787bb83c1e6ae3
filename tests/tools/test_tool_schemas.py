"""Each tool's JSON schema is generated from its attrs input class; the model
sees exactly the schemas it saw when they were written by hand
(data/schemas.json, recorded from the hand-written ones)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crush_ls.tools import ToolInputError, builtin_tools

RECORDED = json.loads((Path(__file__).parent / "data" / "schemas.json").read_text())


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_schema_is_unchanged(name):
    schema = builtin_tools()[name].parameters
    assert schema == RECORDED[name]
    # Key order too: the bytes sent to a provider stay the same.
    assert json.dumps(schema) == json.dumps(RECORDED[name])


def test_every_tool_has_a_recorded_schema():
    assert sorted(builtin_tools()) == sorted(RECORDED)


def test_every_required_field_is_required_in_the_schema():
    for tool in builtin_tools().values():
        required = tool.parameters.get("required", [])
        for field in required:
            with pytest.raises(ToolInputError):
                tool.parse({k: v for k, v in minimal(tool.parameters).items() if k != field})


def minimal(schema):
    """An input holding only the required fields, with values of the right type."""
    samples = {"string": "x", "integer": 1, "boolean": True, "array": []}
    return {name: samples[schema["properties"][name]["type"]] for name in schema.get("required", [])}
