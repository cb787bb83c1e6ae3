"""The ACP updates crush-ls builds by hand are exactly the schema types' wire form."""

from __future__ import annotations

import pytest
from acp import schema

from crush_ls.acp import updates


@pytest.mark.parametrize("kind", ["user", "agent", "thought"])
@pytest.mark.parametrize("message_id", ["m1", None])
def test_hand_built_chunks_equal_the_schema_dump(kind, message_id) -> None:
    wire = updates.chunk_wire(kind, "some text", message_id)
    model = updates.message_chunk(kind, "some text", message_id)
    assert wire == model.model_dump(mode="json", by_alias=True, exclude_none=True)
    note = schema.SessionNotification.model_validate({"sessionId": "s", "update": wire})
    assert note.update == model
