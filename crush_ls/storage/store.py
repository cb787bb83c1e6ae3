"""Sessions, messages and file history in SQLite, off the event loop.

One `Store` per workspace: `<folder>/<dataDirectory>/crush-ls.db` in WAL
mode. Every statement runs on the store's own writer thread, in the order it
was queued. Writes are queued and not awaited (write-behind): the event loop
never waits for the disk, and the writer commits whatever has queued up in
one transaction. Reads queue behind the writes, so a read sees every write
made before it; `flush()` waits for everything queued so far. Sessions are
also kept in memory: `agent/sendMessage` checks that a session exists
without touching the disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .records import DEFAULT_TITLE, Message, Session, new_id, now
from .schema import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)


def _session_from_row(row: sqlite3.Row) -> Session:
    return Session(
        id=row["id"],
        title=row["title"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        message_count=row["message_count"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        cost=row["cost"],
        summary_message_id=row["summary_message_id"],
        todos=json.loads(row["todos"] or "[]"),
        parent_session_id=row["parent_session_id"],
    )


def _message_from_row(row: sqlite3.Row) -> Message:
    return Message(
        id=row["id"],
        session_id=row["session_id"],
        role=row["role"],
        parts=json.loads(row["parts"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        provider=row["provider"],
        is_summary=bool(row["is_summary"]),
    )


def prepare_data_directory(folder: Path, data_directory: str) -> Path:
    """Create the data directory and its `.gitignore` (never changing an existing one)."""
    data_dir = folder / data_directory
    data_dir.mkdir(parents=True, exist_ok=True)
    gitignore = data_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    return data_dir


Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any] | None"]


class Store:
    """The storage of one workspace. Create with `Store.open(path)`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._work, name="crush-ls-db", daemon=True)
        self._writer.start()
        self.sessions: dict[str, Session] = {}
        self._message_seq = 0
        self._closed = False

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (and migrate) synchronously: workspaces open during `initialize`, before any request."""
        store = cls(path)
        opened = threading.Event()
        failure: list[BaseException] = []

        def open_and_signal() -> None:
            try:
                store._open()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
            finally:
                opened.set()

        store._jobs.put((open_and_signal, (), None))
        opened.wait()
        if failure:
            raise failure[0]
        return store

    def _write(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue a write; it lands in order, without the caller waiting."""
        if self._closed:
            log.error("storage of %s is closed: a write was dropped", self.path)
            return
        self._jobs.put((fn, args, None))

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Queue a job behind every earlier write and wait for its result."""
        if self._closed:
            raise RuntimeError(f"the storage {self.path} is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((fn, args, future))
        return await future

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            batch = [job]
            while job is not None:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                batch.append(job)
            in_transaction = self._db is not None
            if in_transaction:
                self.db.execute("BEGIN")
            for item in batch:
                if item is None:
                    continue
                self._run(*item)
            if in_transaction and self._db is not None:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.Error:  # the thread must live on: later calls would wait forever
                    log.exception("storage commit failed; %d queued changes are lost", len(batch))
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
            if None in batch:  # close: fold the WAL back into the database file
                if self._db is not None:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.close()
                    self._db = None
                return

    @staticmethod
    def _run(fn: Callable[..., Any], args: tuple[Any, ...], future: asyncio.Future[Any] | None) -> None:
        try:
            result = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported to the waiter, or logged for a write
            if future is None:
                log.exception("storage write failed")
            else:
                future.get_loop().call_soon_threadsafe(_settle_future, future, None, exc)
            return
        if future is not None:
            future.get_loop().call_soon_threadsafe(_settle_future, future, result, None)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        migrate(db)
        for row in db.execute("SELECT * FROM sessions"):
            session = _session_from_row(row)
            self.sessions[session.id] = session
        self._message_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "store is closed"
        return self._db

    def _save_session(self, s: Session) -> None:
        self.db.execute(
            """INSERT INTO sessions (id, parent_session_id, title, message_count, prompt_tokens,
                   completion_tokens, cost, summary_message_id, todos, created_at, updated_at)
               VALUES (?,?,?,?,?,?,?,?,?,?,?)
               ON CONFLICT(id) DO UPDATE SET title=excluded.title, message_count=excluded.message_count,
                   prompt_tokens=excluded.prompt_tokens, completion_tokens=excluded.completion_tokens,
                   cost=excluded.cost, summary_message_id=excluded.summary_message_id,
                   todos=excluded.todos, updated_at=excluded.updated_at""",
            (
                s.id, s.parent_session_id, s.title, s.message_count, s.prompt_tokens,
                s.completion_tokens, s.cost, s.summary_message_id, json.dumps(s.todos),
                s.created_at, s.updated_at,
            ),
        )

    def _save_message(self, m: Message, seq: int | None) -> None:
        if seq is None:
            self.db.execute(
                "UPDATE messages SET parts=?, model=?, provider=?, updated_at=? WHERE id=?",
                (json.dumps(m.parts), m.model, m.provider, m.updated_at, m.id),
            )
            return
        self.db.execute(
            """INSERT INTO messages (id, session_id, role, parts, model, provider, is_summary,
                   seq, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)""",
            (
                m.id, m.session_id, m.role, json.dumps(m.parts), m.model, m.provider,
                int(m.is_summary), seq, m.created_at, m.updated_at,
            ),
        )

    # ------------------------------------------------------------------ sessions
    def get_session(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    def list_sessions(self) -> list[Session]:
        top = [s for s in self.sessions.values() if s.parent_session_id is None]
        return sorted(top, key=lambda s: (s.updated_at, s.created_at), reverse=True)

    def new_session(self, title: str | None = None, session_id: str | None = None) -> Session:
        """Create a session at once (requests behind session/create see it); the write is queued."""
        ts = now()
        session = Session(id=session_id or new_id(), title=title or DEFAULT_TITLE, created_at=ts, updated_at=ts)
        self.sessions[session.id] = session
        self._write(self._save_session, attrs.evolve(session))
        return session

    def save_session(self, session: Session) -> None:
        session.updated_at = now()
        self._write(self._save_session, attrs.evolve(session, todos=list(session.todos)))

    def forget_session(self, session_id: str) -> None:
        """Requests see the session gone at once; `delete_session` removes it from disk."""
        self.sessions.pop(session_id, None)

    def delete_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self._write(lambda: self.db.execute("DELETE FROM sessions WHERE id=?", (session_id,)))

    # ------------------------------------------------------------------ messages
    def create_message(
        self, session_id: str, role: str, parts: list[dict[str, Any]], *,
        model: str | None = None, provider: str | None = None, is_summary: bool = False,
    ) -> Message:
        ts = now()
        message = Message(
            id=new_id(), session_id=session_id, role=role, parts=parts, created_at=ts,
            updated_at=ts, model=model, provider=provider, is_summary=is_summary,
        )
        self._message_seq += 1
        session = self.sessions.get(session_id)
        if session is not None:
            session.message_count += 1
            session.updated_at = ts
        snapshot = attrs.evolve(message, parts=json.loads(json.dumps(parts)))
        seq = self._message_seq

        def write() -> None:
            self._save_message(snapshot, seq)
            self.db.execute(
                "UPDATE sessions SET message_count = message_count + 1, updated_at=? WHERE id=?",
                (ts, session_id),
            )

        self._write(write)
        return message

    def update_message(self, message: Message) -> None:
        message.updated_at = now()
        snapshot = attrs.evolve(message, parts=json.loads(json.dumps(message.parts)))
        self._write(self._save_message, snapshot, None)

    def delete_message(self, message: Message) -> None:
        session = self.sessions.get(message.session_id)
        if session is not None:
            session.message_count = max(0, session.message_count - 1)

        def write() -> None:
            self.db.execute("DELETE FROM messages WHERE id=?", (message.id,))
            self.db.execute(
                "UPDATE sessions SET message_count = MAX(0, message_count - 1) WHERE id=?",
                (message.session_id,),
            )

        self._write(write)

    async def list_messages(self, session_id: str) -> list[Message]:
        def read() -> list[Message]:
            rows = self.db.execute(
                "SELECT * FROM messages WHERE session_id=? ORDER BY seq", (session_id,)
            )
            return [_message_from_row(r) for r in rows]

        return await self._call(read)

    # ------------------------------------------------------------------ file history
    async def add_file_version(self, session_id: str, path: str, content: str | None) -> int:
        """Keep one version of a file (its content before or after a tool wrote it)."""

        def write() -> int:
            row = self.db.execute(
                "SELECT COALESCE(MAX(version), -1) FROM files WHERE path=? AND session_id=?",
                (path, session_id),
            ).fetchone()
            version = row[0] + 1
            self.db.execute(
                "INSERT INTO files (id, session_id, path, content, version, created_at) VALUES (?,?,?,?,?,?)",
                (new_id(), session_id, path, content, version, now()),
            )
            return version

        return await self._call(write)

    async def file_versions(self, path: str, session_id: str | None = None) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            sql = "SELECT session_id, path, content, version, created_at FROM files WHERE path=?"
            args: tuple[Any, ...] = (path,)
            if session_id is not None:
                sql += " AND session_id=?"
                args += (session_id,)
            return [dict(r) for r in self.db.execute(sql + " ORDER BY created_at, version", args)]

        return await self._call(read)

    def record_read(self, session_id: str, path: str, mtime: float | None) -> None:
        self._write(
            lambda: self.db.execute(
                "INSERT INTO read_files (session_id, path, read_at, mtime) VALUES (?,?,?,?) "
                "ON CONFLICT(path, session_id) DO UPDATE SET read_at=excluded.read_at, mtime=excluded.mtime",
                (session_id, path, now(), mtime),
            )
        )

    async def last_read(self, session_id: str, path: str) -> tuple[float, float | None] | None:
        def read() -> tuple[float, float | None] | None:
            row = self.db.execute(
                "SELECT read_at, mtime FROM read_files WHERE session_id=? AND path=?", (session_id, path)
            ).fetchone()
            return (row["read_at"], row["mtime"]) if row else None

        return await self._call(read)

    # ------------------------------------------------------------------ lifetime
    async def flush(self) -> None:
        """Wait for every write queued so far."""
        await self._call(lambda: None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # later calls fail at once instead of waiting on a stopped thread
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)


def _settle_future(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
