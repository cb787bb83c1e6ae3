"""What the store keeps in memory of a session (`history`) and writes as JSON (`messages_json`)
is what it reads back from disk, whatever happened to the messages meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

from crush_ls.protocol.encode import message_to_wire
from crush_ls.storage import Store


async def test_messages_json_is_the_wire_form_of_the_visible_messages(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    session = store.new_session("t")
    store.create_message(session.id, "user", [{"type": "text", "text": "kept \ud83d and é"}])
    store.create_message(session.id, "assistant", [{"type": "tool_call", "id": "c", "name": "view", "input": {}}],
                         model="m", provider="p")
    text = await store.messages_json(session.id)
    assert text.isascii()
    assert json.loads(text) == [message_to_wire(m) for m in await store.list_messages(session.id)]
    await store.close()
