"""Databases written by older crush-ls open and migrate (issue 9 item 7).

`tests/fixtures/crush-ls-v0.db` was written by crush-ls before schema
versions existed (see tests/fixtures/make_v0_db.py).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from crush_ls.storage import DB_NAME, Store
from crush_ls.storage.schema import MIGRATIONS, SchemaTooNew, migrate, version
from tests.raw import RawServer

FIXTURE = Path(__file__).parent.parent / "fixtures" / "crush-ls-v0.db"


@pytest.fixture
def v0_db(tmp_path: Path) -> Path:
    path = tmp_path / "crush-ls.db"
    shutil.copyfile(FIXTURE, path)
    return path


def user_version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return version(db)
    finally:
        db.close()


async def test_a_database_from_before_schema_versions_opens_with_its_sessions_and_messages(v0_db: Path):
    assert user_version(v0_db) == 0
    store = Store.open(v0_db)
    sessions = store.list_sessions()
    assert [s.title for s in sessions] == ["hello there", "Renamed notes"]
    edited = sessions[1]
    assert (edited.message_count, edited.prompt_tokens, edited.completion_tokens) == (6, 12, 5)
    messages = await store.list_messages(edited.id)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[0].text() == "edit notes.txt please"
    assert [p["name"] for m in messages for p in m.parts if p["type"] == "tool_call"] == ["view", "edit"]
    assert messages[-1].text() == "Changed one to two." and messages[-1].finish_reason() == "end_turn"
    assert messages[-1].model == "scripted"
    path = store.db.execute("SELECT path FROM files LIMIT 1").fetchone()["path"]
    assert [v["content"] for v in await store.file_versions(path, edited.id)] == ["one\n", "two\n"]
    assert [m.text() for m in await store.list_messages(sessions[0].id)] == ["hello there", "hello there"]
    # It goes on working: a new message lands after the old ones and survives a reopen.
    store.create_message(edited.id, "user", [{"type": "text", "text": "and now?"}])
    await store.close()
    assert user_version(v0_db) == len(MIGRATIONS)
    reopened = Store.open(v0_db)
    assert [m.text() for m in await reopened.list_messages(edited.id)][-1] == "and now?"
    assert reopened.get_session(edited.id).message_count == 7
    await reopened.close()


def test_migrations_run_in_order_once_and_a_failed_one_changes_nothing(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    steps = [("CREATE TABLE a (x)",), ("ALTER TABLE a ADD COLUMN y",), ("CREATE TABLE c (z)", "NOT SQL")]
    assert migrate(db, steps[:2]) == 2
    assert migrate(db, steps[:2]) == 2  # nothing left to do
    with pytest.raises(sqlite3.OperationalError):
        migrate(db, steps)
    assert version(db) == 2
    assert db.execute("SELECT name FROM sqlite_master WHERE name='c'").fetchone() is None


def test_a_database_from_a_newer_crush_ls_is_refused(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(SchemaTooNew, match="newer"):
        migrate(db)


def test_a_workspace_with_an_old_database_shows_its_sessions_through_the_protocol(tmp_path: Path):
    (tmp_path / ".crush").mkdir()
    shutil.copyfile(FIXTURE, tmp_path / ".crush" / DB_NAME)
    server = RawServer(tmp_path, {"model": {"provider": "echo"}})
    try:
        sessions = server.request("session/list", {})["result"]["sessions"]
        assert [(s["title"], s["messageCount"]) for s in sessions] == [("hello there", 2), ("Renamed notes", 6)]
        messages = server.request("session/messages", {"sessionId": sessions[1]["id"]})["result"]["messages"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
        assert messages[2]["parts"][0]["content"] == "<file>\n     1|one\n</file>"
        assert messages[0]["createdAt"].endswith("Z")
    finally:
        server.close()
