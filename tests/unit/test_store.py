"""The store without a client: storable text, failed writes, repair only when alone."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from crush_ls.protocol.errors import StorageFailed
from crush_ls.storage import Store
from crush_ls.storage import store as store_module


async def test_text_a_model_or_a_file_name_brings_is_stored_even_with_lone_surrogates(tmp_path: Path):
    store = Store.open(tmp_path / "db")
    session = store.new_session("title \ud800")
    session.title = "made by a model \udfff"
    store.save_session(session)
    message = store.create_message(session.id, "assistant", [{"type": "text", "text": "kept \ud83d exactly"}],
                                   model="m\ud800", provider="p")
    store.record_read(session.id, "/w/name-\udcff.txt", 1.0)
    await store.committed(message.id)
    assert await store.last_read(session.id, "/w/name-\udcff.txt") is not None
    await store.close()
    reopened = Store.open(tmp_path / "db")
    assert reopened.get_session(session.id).title == "made by a model \ufffd"
    (stored,) = await reopened.list_messages(session.id)
    assert (stored.text(), stored.model) == ("kept \ud83d exactly", "m\ufffd")
    await reopened.close()


async def test_a_failed_write_is_raised_to_its_waiter_and_reported_when_nobody_waits(tmp_path: Path):
    reported: list[tuple[str | None, str]] = []
    store = Store.open(tmp_path / "db", lambda session_id, error: reported.append((session_id, error.reason)))
    session = store.new_session("t")
    await store.committed(session.id)
    store.db.execute("CREATE TRIGGER no_messages BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'no'); END")
    waited = store.create_message(session.id, "user", [])
    with pytest.raises(StorageFailed, match="no"):
        await store.committed(waited.id)
    assert store.get_session(session.id).message_count == 0  # put back as it was
    store.create_message(session.id, "user", [])
    await store.flush()
    assert reported == [(session.id, "storage_failed")]
    await store.close()


async def test_a_store_opened_beside_a_live_one_repairs_nothing_and_the_last_one_alone_does(tmp_path: Path):
    first = Store.open(tmp_path / "db")
    session = first.new_session("t")
    streaming = first.create_message(session.id, "assistant", [])  # a turn of the first server, still going
    await first.committed(streaming.id)
    starting = first.new_session("a prompt whose turn has not made its assistant message yet")
    prompt = first.create_message(starting.id, "user", [{"type": "text", "text": "hi"}])
    await first.committed(prompt.id)
    second = Store.open(tmp_path / "db")
    assert (await second.list_messages(session.id))[0].finish_reason() is None
    assert len(await second.list_messages(starting.id)) == 1
    await second.close()
    await first.close()  # a clean close (a real one ends its turns first): nothing to repair after it
    third = Store.open(tmp_path / "db")
    assert (await third.list_messages(session.id))[0].finish_reason() is None  # closed cleanly: nothing to do
    await third.close()
    db = sqlite3.connect(tmp_path / "db", isolation_level=None)
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'opened'")  # one more opening that never closed
    db.close()
    fourth = Store.open(tmp_path / "db")
    assert (await fourth.list_messages(session.id))[0].finish_reason() == "canceled"
    assert [(m.role, m.finish_reason()) for m in await fourth.list_messages(starting.id)] == [
        ("user", None), ("assistant", "canceled")]
    assert fourth.get_session(starting.id).message_count == 2
    await fourth.close()


async def test_the_wal_is_folded_into_the_database_beside_the_writes_not_in_their_commit(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(store_module, "CHECKPOINT_EVERY", 4)
    store = Store.open(tmp_path / "db")
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no checkpoint inside a COMMIT
    size = (tmp_path / "db").stat().st_size
    session = store.new_session("t")
    for n in range(8):  # one commit each: the checkpoint thread is asked twice
        await store.committed(store.create_message(session.id, "user", [{"type": "text", "text": "x" * 50_000}]).id)
    deadline = time.monotonic() + 10
    while (tmp_path / "db").stat().st_size == size:  # the pages reach the database file only by a checkpoint
        assert time.monotonic() < deadline, "the WAL was never checkpointed while the store was open"
        await asyncio.sleep(0.01)
    await store.close()
    # The last connection closed (the checkpoint thread's too): sqlite folded the WAL and removed it.
    assert not (tmp_path / "db-wal").exists() and not (tmp_path / "db-shm").exists()
    reopened = Store.open(tmp_path / "db")
    assert len(await reopened.list_messages(session.id)) == 8
    await reopened.close()
