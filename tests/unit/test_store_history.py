"""What the store keeps in memory of a session (`history`) and writes as JSON (`messages_json`)
is what it reads back from disk, whatever happened to the messages meanwhile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crush_ls.protocol.encode import message_to_wire
from crush_ls.protocol.errors import StorageFailed
from crush_ls.storage import Store
from crush_ls.storage import store as store_module
from crush_ls.storage.store import HISTORY_MAX_SESSIONS, HISTORY_SESSIONS


async def on_disk(store: Store, session_id: str) -> list[tuple[str, str, list[dict]]]:
    return [(m.id, m.role, m.parts) for m in await store.list_messages(session_id)]


async def kept(store: Store, session_id: str) -> list[tuple[str, str, list[dict]]]:
    return [(m.id, m.role, m.parts) for m in await store.history(session_id)]


async def test_history_follows_created_changed_hidden_and_shown_messages(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    session = store.new_session("t")
    first = store.create_message(session.id, "user", [{"type": "text", "text": "one"}])
    reading = store.history(session.id)
    answer = store.create_message(session.id, "assistant", [])  # while the first read waits
    assert [m.id for m in await reading] == [first.id, answer.id]
    answer.parts.append({"type": "text", "text": "two"})
    store.update_message(answer)
    assert await kept(store, session.id) == await on_disk(store, session.id)
    second = store.create_message(session.id, "user", [{"type": "text", "text": "three"}])
    seq, _role, _hidden = await store.message_position(session.id, second.id)
    await store.set_hidden(session.id, "rewind-1", seq)
    assert [m.id for m in await store.history(session.id)] == [first.id, answer.id]
    await store.set_hidden(session.id, "rewind-1", None)
    assert await kept(store, session.id) == await on_disk(store, session.id)
    assert len(await store.history(session.id)) == 3
    await store.close()


async def test_a_copy_changed_elsewhere_a_deleted_message_and_a_failed_write_are_read_again(tmp_path: Path):
    store = Store.open(tmp_path / "db", lambda _session, _error: None)
    session = store.new_session("t")
    message = store.create_message(session.id, "assistant", [{"type": "text", "text": "a"}])
    await store.history(session.id)
    (copy,) = await store.list_messages(session.id)
    copy.parts[0]["text"] = "b"
    store.update_message(copy)
    assert await kept(store, session.id) == await on_disk(store, session.id)
    store.delete_message(message)
    assert await store.history(session.id) == []
    await store.committed(session.id)
    store.db.execute("CREATE TRIGGER no_messages BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'no'); END")
    lost = store.create_message(session.id, "user", [])
    with pytest.raises(StorageFailed):
        await store.committed(lost.id)
    assert await store.history(session.id) == []
    await store.close()


async def test_history_is_kept_for_a_few_sessions_only(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    sessions = [store.new_session(f"s{n}") for n in range(HISTORY_MAX_SESSIONS + 3)]
    for session in sessions:
        store.create_message(session.id, "user", [{"type": "text", "text": session.title}])
        assert [m.text() for m in await store.history(session.id)] == [session.title]
    assert len(store._histories) == HISTORY_MAX_SESSIONS
    assert [m.text() for m in await store.history(sessions[0].id)] == ["s0"]  # read from disk again
    await store.close()


async def test_beyond_the_last_few_sessions_history_is_kept_up_to_a_number_of_messages(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_module, "HISTORY_MESSAGES", 10)
    store = Store.open(tmp_path / "db")
    sessions = [store.new_session(f"s{n}") for n in range(HISTORY_SESSIONS + 3)]
    for session in sessions:
        for n in range(3):
            store.create_message(session.id, "user", [{"type": "text", "text": f"{session.title}.{n}"}])
        assert len(await store.history(session.id)) == 3
    # 3 messages a session: the last four sessions are kept whatever they hold, the others only within 10
    assert list(store._histories) == [s.id for s in sessions[-HISTORY_SESSIONS:]]
    await store.close()


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


async def test_nothing_of_an_awaited_write_is_kept_once_it_landed(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    session = store.new_session("t")
    for n in range(50):
        message = store.create_message(session.id, "user", [{"type": "text", "text": str(n)}])
        await store.committed(message.id)
    await store.flush()
    assert not store._claimed and not store._writes
    await store.close()
