"""Finish what a server that stopped mid-turn left open, as a cancel would have.

A crash, a kill or a power cut can end the server while a turn streams or
runs tools: its assistant message has no finish, and its tool calls have no
result. Shown as they are, they would look as if still streaming, and a model
replaying the history would see a call that was never answered. When a
database opens, before any request reads it, each such message gets a finish
part `canceled` saying it was interrupted; a half-written summary is dropped
(as a cancel drops it); every tool call left without a result is marked
`failed`, with an error result saying why; and a prompt the model never got
to answer gets an assistant message finished `canceled` (what `agent/cancel`
stores, but naming the interruption).

Repairing must never touch the turns of a server that is still running on
the same folder, and should not read the whole database on every start.
`Tenancy` knows both: every open store holds a shared `flock` on
`crush-ls.db.lock` (the kernel drops it when a process dies, even by
SIGKILL), and the `meta` table counts openings and clean closes. A store
that finds itself alone and more openings than closes repairs; otherwise it
leaves the messages as they are.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from ..protocol.encode import iso
from .records import new_id, now

log = logging.getLogger(__name__)

INTERRUPTED = "Interrupted: crush-ls stopped before this message was finished"
TOOL_INTERRUPTED = "Error: the tool call was interrupted: crush-ls stopped before it finished"
OPEN_STATUSES = ("pending", "awaiting_permission", "running")

# json.dumps writes `"type": "finish"` for a finish part; inside a text it would be escaped.
# A turn's open tool calls are on the last assistant message of its session.
_UNFINISHED_OR_LAST = """
    SELECT * FROM messages WHERE role = 'assistant' AND parts NOT LIKE '%"type": "finish"%'
    UNION
    SELECT m.* FROM messages AS m JOIN (
        SELECT session_id, MAX(seq) AS seq FROM messages WHERE role = 'assistant' GROUP BY session_id
    ) AS last ON m.session_id = last.session_id AND m.seq = last.seq
    ORDER BY seq"""
# A session whose last message is a prompt: its turn never got to make its assistant message.
_UNANSWERED_PROMPTS = """
    SELECT m.session_id FROM messages AS m JOIN (
        SELECT session_id, MAX(seq) AS seq FROM messages GROUP BY session_id
    ) AS last ON m.session_id = last.session_id AND m.seq = last.seq
    WHERE m.role = 'user'"""


def repair_unfinished(db: sqlite3.Connection) -> int:
    """Repair in one transaction; returns how many messages were changed or added."""
    db.execute("BEGIN IMMEDIATE")
    try:
        changed = sum(_repair(db, row) for row in db.execute(_UNFINISHED_OR_LAST).fetchall())
        for (session_id,) in db.execute(_UNANSWERED_PROMPTS).fetchall():
            _add_message(db, session_id, "assistant", [_interrupted()])
            changed += 1
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    if changed:
        log.warning("repaired %d messages a stopped server left unfinished", changed)
    return changed


def _repair(db: sqlite3.Connection, row: sqlite3.Row) -> int:
    parts: list[dict[str, Any]] = json.loads(row["parts"])
    finished = any(p.get("type") == "finish" for p in parts)
    if not finished and row["is_summary"]:
        db.execute("DELETE FROM messages WHERE id = ?", (row["id"],))
        db.execute("UPDATE sessions SET message_count = MAX(0, message_count - 1) WHERE id = ?",
                   (row["session_id"],))
        return 1
    results = _results_after(db, row["session_id"], row["seq"])
    unanswered = [p for p in parts if p.get("type") == "tool_call" and p.get("id") not in results]
    stale = [p for p in parts if p.get("type") == "tool_call" and p.get("status") in OPEN_STATUSES]
    if finished and not stale and not unanswered:
        return 0
    for part in stale:
        result = results.get(part.get("id"))
        part["status"] = "failed" if result is None or result.get("isError") else "completed"
    if not finished:
        parts.append(_interrupted())
    db.execute("UPDATE messages SET parts = ?, updated_at = ? WHERE id = ?", (json.dumps(parts), now(), row["id"]))
    for part in unanswered:
        _add_result(db, row["session_id"], part)
    return 1 + len(unanswered)


def _results_after(db: sqlite3.Connection, session_id: str, seq: int) -> dict[object, dict[str, Any]]:
    found: dict[object, dict[str, Any]] = {}  # by tool call id
    for (raw,) in db.execute("SELECT parts FROM messages WHERE session_id = ? AND role = 'tool' AND seq > ?",
                             (session_id, seq)):
        for part in json.loads(raw):
            if part.get("type") == "tool_result":
                found[part.get("toolCallId")] = part
    return found


def _interrupted() -> dict[str, Any]:
    return {"type": "finish", "reason": "canceled", "message": INTERRUPTED, "time": iso(now())}


def _add_result(db: sqlite3.Connection, session_id: str, call: dict[str, Any]) -> None:
    part = {"type": "tool_result", "toolCallId": call.get("id"), "name": call.get("name"),
            "content": TOOL_INTERRUPTED, "isError": True}
    _add_message(db, session_id, "tool", [part])


def _add_message(db: sqlite3.Connection, session_id: str, role: str, parts: list[dict[str, Any]]) -> None:
    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages").fetchone()[0]
    ts = now()
    db.execute(
        "INSERT INTO messages (id, session_id, role, parts, seq, created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
        (new_id(), session_id, role, json.dumps(parts), seq, ts, ts))
    db.execute("UPDATE sessions SET message_count = message_count + 1 WHERE id = ?", (session_id,))


class Tenancy:
    """This store's share of the database, from open to close (see the module docstring)."""

    def __init__(self, db_path: Path) -> None:
        self._lock = open(f"{db_path}.lock", "ab")  # noqa: SIM115 - held for the store's life

    def begin(self, db: sqlite3.Connection) -> int:
        """Count this opening, repairing first when no other server has the database open."""
        repaired = 0
        alone = self._try_lock(fcntl.LOCK_EX)
        if alone and _count(db, "opened") != _count(db, "closed"):
            repaired = repair_unfinished(db)
        db.execute("BEGIN IMMEDIATE")
        if alone:  # every earlier opening is accounted for: closed cleanly, or repaired now
            db.execute("UPDATE meta SET value = (SELECT value FROM meta WHERE key = 'opened') WHERE key = 'closed'")
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'opened'")
        db.execute("COMMIT")
        fcntl.flock(self._lock, fcntl.LOCK_SH)
        return repaired

    def end(self, db: sqlite3.Connection) -> None:
        """A clean close: every turn of this store has ended and been stored."""
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'closed'")
        self.release()

    def release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()

    def _try_lock(self, kind: int) -> bool:
        try:
            fcntl.flock(self._lock, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _count(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0
