"""Strict params and the storage's lifetime, without a client."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crush_ls.protocol.convert import structure_params
from crush_ls.protocol.params import SendMessageParams
from crush_ls.storage import Store


def test_null_means_not_given():
    params = structure_params({"sessionId": None, "mode": None, "attachments": None, "prompt": "hi"},
                              SendMessageParams)
    assert (params.session_id, params.mode, params.attachments) == (None, "queue", [])


@pytest.mark.parametrize("raw, message", [
    ({"mode": "later"}, "'later' is not one of 'queue', 'steer' @ params.mode"),
    ({"sessionId": 5}, "expected string, got integer @ params.sessionId"),
    ({"attachments": [{"path": True}]}, "expected string, got boolean @ params.attachments"),
    ({"prompt": ["x"]}, "expected string, got array @ params.prompt"),
])
def test_wrong_params_name_the_field_and_are_never_coerced(raw, message):
    with pytest.raises(ValueError) as error:
        structure_params(raw, SendMessageParams)
    assert message in str(error.value)


async def test_a_closed_store_fails_fast_instead_of_waiting(tmp_path: Path):
    store = Store.open(tmp_path / "db.sqlite")
    session = store.new_session("t")
    store.create_message(session.id, "user", [{"type": "text", "text": "kept"}])
    await store.close()
    with pytest.raises(RuntimeError, match="closed"):
        await asyncio.wait_for(store.list_messages(session.id), 2)
    store.create_message(session.id, "user", [])  # dropped, logged: must not hang or raise
    reopened = Store.open(tmp_path / "db.sqlite")
    assert [m.text() for m in await reopened.list_messages(session.id)] == ["kept"]
    await reopened.close()
