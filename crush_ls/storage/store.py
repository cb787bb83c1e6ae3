"""Sessions, messages and file history in SQLite, off the event loop.

One `Store` per workspace: `<folder>/<dataDirectory>/crush-ls.db` in WAL
mode. Every statement runs on the store's own writer thread, in the order it
was queued. Writes are queued and not awaited (write-behind): the event loop
never waits for the disk, and the writer commits whatever has queued up in
one transaction. Reads queue behind the writes, so a read sees every write
made before it. Whoever must know a write is on disk waits for it:
`committed(record_id)` for one session or message, `flush()` for everything
queued so far; both end after the COMMIT, and raise `StorageFailed` when the
write did not land. A failed write nobody waits for goes to `on_write_error`
with the session it belonged to, so that its client hears of it. Sessions
are also kept in memory: `agent/sendMessage` checks that a session exists
without touching the disk.

The visible messages of the few sessions that ran last are also kept
(`history`): a prompt in a long session would otherwise read and parse all
of them again before its first model call.

Text is bound as UTF-8, which a lone surrogate (`"\ud800"`, valid in JSON)
cannot be: `storable` replaces them in the text columns (titles, models,
paths). Parts and todos are stored as ASCII-escaped JSON, which keeps them exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..protocol.encode import message_json
from ..protocol.errors import StorageFailed
from .records import DEFAULT_TITLE, Message, Session, new_id, now
from .repair import Tenancy
from .schema import migrate

T = TypeVar("T")
log = logging.getLogger(__name__)

WriteErrorHandler = Callable[[str | None, StorageFailed], None]
# The sessions whose messages `history` keeps: the last HISTORY_SESSIONS read always (the ones a
# person works in), and up to HISTORY_MAX_SESSIONS while they keep HISTORY_MESSAGES in all (sessions
# prompted together: 20 at once read their whole history from disk for every prompt).
HISTORY_SESSIONS = 4
HISTORY_MAX_SESSIONS = 64
HISTORY_MESSAGES = 4_000
CHECKPOINT_EVERY = 64  # commits between two checkpoints of the WAL at first; then as many as fill...
CHECKPOINT_PAGES = 1_000  # ...this many pages of it (sqlite's own threshold)
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (SQLite text must be valid UTF-8)."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def _storable_or_none(text: str | None) -> str | None:
    return None if text is None else storable(text)


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


_MESSAGE_COLUMNS = "id, session_id, role, parts, created_at, updated_at, model, provider, is_summary"


def _message_from_row(row: tuple[Any, ...], parts: list[dict[str, Any]] | None = None) -> Message:
    """A row of _MESSAGE_COLUMNS, a plain tuple: every run reads its session's history, and sqlite3.Row's
    lookups by name took 40% of reading 2,000 messages. With `parts`, those are its parts (the
    stored text is not parsed)."""
    id_, session_id, role, stored, created_at, updated_at, model, provider, is_summary = row
    parts = json.loads(stored) if parts is None else parts
    return Message(id=id_, session_id=session_id, role=role, parts=parts, created_at=created_at,
                   updated_at=updated_at, model=model, provider=provider, is_summary=bool(is_summary))


def prepare_data_directory(folder: Path, data_directory: str) -> Path:
    """Create the data directory and its `.gitignore` (never changing an existing one)."""
    data_dir = folder / data_directory
    data_dir.mkdir(parents=True, exist_ok=True)
    gitignore = data_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")
    return data_dir


# (statement function, its arguments, who waits for it, the session it belongs to, a write?)
Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any] | None", "str | None", bool]
Outcome = tuple["asyncio.Future[Any] | None", Any, "BaseException | None", "str | None", bool]


class Store:
    """The storage of one workspace. Create with `Store.open(path)`."""

    def __init__(self, path: Path, on_write_error: WriteErrorHandler | None = None) -> None:
        self.path = path
        self.on_write_error = on_write_error
        self._writes: dict[str, asyncio.Future[Any]] = {}  # the latest write of a record still in flight
        self._claimed: set[asyncio.Future[Any]] = set()  # writes someone awaits (who hears of a failure)
        self._db: sqlite3.Connection | None = None
        self._jobs: queue.SimpleQueue[list[Job] | None] = queue.SimpleQueue()
        self._turn_jobs: list[Job] = []  # queued in this loop turn, handed to the thread at its end
        self._writer = threading.Thread(target=self._work, name="crush-ls-db", daemon=True)
        self._writer.start()
        self._checkpointer: Checkpointer | None = None
        self._commits = 0  # since the last checkpoint
        self.sessions: dict[str, Session] = {}
        self._message_seq = 0
        self._closed = False
        self._tenancy: Tenancy | None = None
        # The visible messages of the sessions `history` read last (least recent first), the
        # very objects the agent changes; a session's list grows as its messages are created.
        self._histories: OrderedDict[str, list[Message]] = OrderedDict()

    @classmethod
    def open(cls, path: Path, on_write_error: WriteErrorHandler | None = None) -> Store:
        """Open (and migrate) synchronously: workspaces open during `initialize`, before any request."""
        store = cls(path, on_write_error)
        opened = threading.Event()
        failure: list[BaseException] = []

        def open_and_signal() -> None:
            try:
                store._open()
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                failure.append(exc)
            finally:
                opened.set()

        store._jobs.put([(open_and_signal, (), None, None, False)])
        opened.wait()
        if failure:
            raise failure[0]
        return store

    def _write(self, fn: Callable[..., Any], *args: Any, session_id: str | None, record: str | None = None,
               undo: Callable[[], None] | None = None) -> None:
        """Queue a write; it lands in order, without the caller waiting (see `committed`).

        `undo` puts what is kept in memory back as it was when the write fails.
        """
        if self._closed:
            log.error("storage of %s is closed: a write was dropped", self.path)
            return
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda done: self._written(done, session_id, record, undo))
        if record is not None:
            self._writes[record] = future
        self._queue((fn, args, future, session_id, True))

    def _written(self, future: asyncio.Future[Any], session_id: str | None, record: str | None,
                 undo: Callable[[], None] | None) -> None:
        claimed = future in self._claimed
        self._claimed.discard(future)  # kept until now, every awaited write stayed (and grew the set for good)
        if future.cancelled():
            return
        if record is not None and self._writes.get(record) is future and not future.exception():
            del self._writes[record]  # a failed one stays until someone asks `committed`
        if future.exception() is None:
            return
        if session_id is not None:  # what is kept may now differ from the disk: read it again
            self._histories.pop(session_id, None)
        if undo is not None:
            undo()
        if claimed:
            return
        error = future.exception()
        assert isinstance(error, StorageFailed)
        if self.on_write_error is not None:
            self.on_write_error(session_id, error)
        else:
            log.error("%s", error.message)

    async def committed(self, record_id: str) -> None:
        """Wait until the writes queued so far for a session or message are committed.

        Raises `StorageFailed` when the latest did not land (and it is then not
        reported to `on_write_error`: the caller tells its client).
        """
        future = self._writes.get(record_id)
        if future is None:
            return
        if future.done():
            self._writes.pop(record_id, None)
        else:
            self._claimed.add(future)
        await asyncio.shield(future)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Queue a job behind every earlier write and wait for its result (after their commit)."""
        if self._closed:
            raise RuntimeError(f"the storage {self.path} is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue((fn, args, future, None, False))
        return await future

    def _queue(self, job: Job) -> None:
        """Queue a job for the thread. The jobs of one loop turn are handed over together, once:
        each hand-off wakes the thread, which then takes the GIL from the loop (a prompt queued
        about five, one by one, and an ack behind them waited for the thread each time)."""
        if not self._turn_jobs:
            asyncio.get_running_loop().call_soon(self._hand_off)
        self._turn_jobs.append(job)

    def _hand_off(self) -> None:
        jobs, self._turn_jobs = self._turn_jobs, []
        if jobs:
            self._jobs.put(jobs)

    # ------------------------------------------------------------------ worker thread
    def _work(self) -> None:
        while True:
            batch: list[Job] = []
            handed = self._jobs.get()
            while handed is not None:  # everything handed over meanwhile, up to a close
                batch += handed
                try:
                    handed = self._jobs.get_nowait()
                except queue.Empty:
                    break
            self._settle(self._run_batch(batch))
            self._commits += 1
            if self._checkpointer is not None and self._commits >= self._checkpointer.every:
                self._commits = 0
                self._checkpointer.request()
            if handed is None:  # close: fold the WAL back into the database file
                if self._checkpointer is not None:
                    self._checkpointer.stop()
                if self._db is not None:
                    if self._tenancy is not None:
                        self._tenancy.end(self._db)
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.close()
                    self._db = None
                return

    def _run_batch(self, batch: list[Job]) -> list[Outcome]:
        """Run the jobs in one transaction; each outcome counts only once the COMMIT is done."""
        in_transaction = self._db is not None
        if in_transaction:
            self.db.execute("BEGIN")
        outcomes: list[Outcome] = []
        for fn, args, future, session_id, is_write in batch:
            try:
                outcomes.append((future, fn(*args), None, session_id, is_write))
            except Exception as exc:  # noqa: BLE001 - the thread must live on; the waiter hears of it
                if is_write:
                    log.warning("storage write failed: %s: %s", type(exc).__name__, exc)
                outcomes.append((future, None, self._failure(exc, is_write), session_id, is_write))
        if in_transaction and self._db is not None:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error as exc:  # nothing of the batch landed
                log.error("storage commit failed; %d queued changes are lost: %s", len(batch), exc)
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                outcomes = [(f, None, error or self._failure(exc, w), s, w) for f, _r, error, s, w in outcomes]
        return outcomes

    def _failure(self, exc: BaseException, is_write: bool) -> BaseException:
        if not is_write:  # a read's own error, as it was raised
            return exc
        return StorageFailed(f"Could not store a change in {self.path}: {type(exc).__name__}: {exc}")

    @staticmethod
    def _settle(outcomes: list[Outcome]) -> None:
        """Hand the outcomes to their waiters, in the loop that waits (one wake-up per loop and batch)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        for outcome in outcomes:
            if outcome[0] is not None:
                by_loop.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, mine in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_futures, mine)
            except RuntimeError:  # that loop is closed: nobody is left waiting
                pass

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA busy_timeout=5000")
        migrate(db)
        tenancy = Tenancy(self.path)
        try:
            tenancy.begin(db)
        except BaseException:
            tenancy.release()
            raise
        self._tenancy = tenancy
        for row in db.execute("SELECT * FROM sessions"):
            session = _session_from_row(row)
            self.sessions[session.id] = session
        self._message_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
        self._db = db
        try:
            self._checkpointer = Checkpointer(self.path)
        except sqlite3.Error as exc:  # sqlite checkpoints in the COMMIT, as it does by default
            log.warning("storage %s: no checkpoint thread (%s)", self.path, exc)
        else:
            db.execute("PRAGMA wal_autocheckpoint=0")

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
        session = Session(id=session_id or new_id(), title=storable(title or DEFAULT_TITLE), created_at=ts,
                          updated_at=ts)
        self.sessions[session.id] = session
        self._write(self._save_session, attrs.evolve(session), session_id=session.id, record=session.id)
        return session

    def save_session(self, session: Session) -> None:
        session.updated_at = now()
        session.title = storable(session.title)  # a title a model made may hold anything
        self._write(self._save_session, attrs.evolve(session, todos=list(session.todos)),
                    session_id=session.id, record=session.id)

    def forget_session(self, session_id: str) -> None:
        """Requests see the session gone at once; `delete_session` removes it from disk."""
        self.sessions.pop(session_id, None)
        self._histories.pop(session_id, None)

    def delete_session(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
        self._histories.pop(session_id, None)
        self._write(lambda: self.db.execute("DELETE FROM sessions WHERE id=?", (session_id,)),
                    session_id=session_id, record=session_id)

    # ------------------------------------------------------------------ messages
    def create_message(
        self, session_id: str, role: str, parts: list[dict[str, Any]], *,
        model: str | None = None, provider: str | None = None, is_summary: bool = False,
    ) -> Message:
        ts = now()
        message = Message(
            id=new_id(), session_id=session_id, role=role, parts=parts, created_at=ts,
            updated_at=ts, model=_storable_or_none(model), provider=_storable_or_none(provider),
            is_summary=is_summary,
        )
        self._message_seq += 1
        session = self.sessions.get(session_id)
        if session is not None:
            session.message_count += 1
            session.updated_at = ts
        snapshot = attrs.evolve(message, parts=json.loads(json.dumps(parts)))
        seq = self._message_seq

        def undo() -> None:
            if session is not None:
                session.message_count = max(0, session.message_count - 1)

        def write() -> None:
            self._save_message(snapshot, seq)
            self.db.execute(
                "UPDATE sessions SET message_count = message_count + 1, updated_at=? WHERE id=?",
                (ts, session_id),
            )

        self._write(write, session_id=session_id, record=message.id, undo=undo)
        if (history := self._histories.get(session_id)) is not None:
            history.append(message)
        return message

    def update_message(self, message: Message) -> None:
        message.updated_at = now()
        history = self._histories.get(message.session_id)
        if history is not None and not any(kept is message for kept in reversed(history)):
            self._histories.pop(message.session_id)  # another copy of a message changed: read again
        snapshot = attrs.evolve(message, parts=json.loads(json.dumps(message.parts)))
        self._write(self._save_message, snapshot, None, session_id=message.session_id, record=message.id)

    def delete_message(self, message: Message) -> None:
        self._histories.pop(message.session_id, None)  # rare (a cancelled summary): read again
        session = self.sessions.get(message.session_id)
        if session is not None:
            session.message_count = max(0, session.message_count - 1)

        def write() -> None:
            self.db.execute("DELETE FROM messages WHERE id=?", (message.id,))
            self.db.execute(
                "UPDATE sessions SET message_count = MAX(0, message_count - 1) WHERE id=?",
                (message.session_id,),
            )

        self._write(write, session_id=message.session_id, record=message.id)

    def _visible_rows(self, session_id: str) -> sqlite3.Cursor:
        """The rows (_MESSAGE_COLUMNS, as tuples) of the session's messages, oldest first, without
        those a rewind hides. On the writer thread."""
        cursor = self.db.cursor()
        cursor.row_factory = None  # tuples (see _message_from_row)
        return cursor.execute(f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id=? "
                              "AND hidden_by IS NULL ORDER BY seq", (session_id,))

    async def list_messages(self, session_id: str) -> list[Message]:
        """The session's messages, oldest first, without those a rewind hides."""
        return await self._call(lambda: [_message_from_row(r) for r in self._visible_rows(session_id)])

    async def history(self, session_id: str) -> list[Message]:
        """`list_messages`, from memory for the sessions read last (see HISTORY_SESSIONS). The list is
        the caller's; its messages are the ones the store keeps: read them, change them only as
        the agent does (parts of its own messages, then `update_message`)."""
        history = self._histories.get(session_id)
        if history is not None:
            self._histories.move_to_end(session_id)
            return list(history)
        # Kept from now on: messages created while the read waits are appended, after those it finds.
        history = self._histories[session_id] = []
        self._forget_histories()
        try:
            stored = await self.list_messages(session_id)
        except BaseException:
            if self._histories.get(session_id) is history:
                del self._histories[session_id]
            raise
        history[:0] = stored
        return list(history)

    def _forget_histories(self) -> None:
        kept = self._histories
        while len(kept) > HISTORY_SESSIONS and (
                len(kept) > HISTORY_MAX_SESSIONS or sum(map(len, kept.values())) > HISTORY_MESSAGES):
            kept.popitem(last=False)

    async def messages_json(self, session_id: str) -> str:
        """`list_messages` in the wire's JSON (an array of `message_to_wire`), built on the writer
        thread from the stored parts' JSON text as it is: parsing and encoding again the parts of a
        long session took most of a `session/messages`."""
        def read() -> str:
            rows = self._visible_rows(session_id)
            return f"[{','.join(message_json(_message_from_row(r, []), r[3]) for r in rows)}]"

        return await self._call(read)

    async def message_position(self, session_id: str, message_id: str) -> tuple[int, str, str | None] | None:
        """(seq, role, hidden_by) of a message of the session, None when it has no such message."""
        def read() -> tuple[int, str, str | None] | None:
            row = self.db.execute("SELECT seq, role, hidden_by FROM messages WHERE session_id=? AND id=?",
                                  (session_id, message_id)).fetchone()
            return (row["seq"], row["role"], row["hidden_by"]) if row else None

        return await self._call(read)

    async def last_seq(self, session_id: str) -> int:
        """The seq of the session's newest visible message (0: none)."""
        return await self._call(lambda: self.db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id=? AND hidden_by IS NULL", (session_id,)
        ).fetchone()[0])

    async def set_hidden(self, session_id: str, rewind_id: str, from_seq: int | None) -> int:
        """Hide the visible messages from `from_seq` on under `rewind_id` (None: show those it hid again);
        keeps the session's message_count to what can be seen. Returns how many changed."""
        def write() -> int:
            if from_seq is None:
                changed = self.db.execute("UPDATE messages SET hidden_by=NULL WHERE session_id=? AND hidden_by=?",
                                          (session_id, rewind_id)).rowcount
            else:
                changed = self.db.execute(
                    "UPDATE messages SET hidden_by=? WHERE session_id=? AND seq>=? AND hidden_by IS NULL",
                    (rewind_id, session_id, from_seq)).rowcount
            self.db.execute("UPDATE sessions SET message_count=(SELECT COUNT(*) FROM messages WHERE session_id=? "
                            "AND hidden_by IS NULL) WHERE id=?", (session_id, session_id))
            return int(changed)

        self._histories.pop(session_id, None)
        changed = await self._call(write)
        self._histories.pop(session_id, None)  # a history read meanwhile holds them still
        session = self.sessions.get(session_id)
        if session is not None:
            session.message_count = max(0, session.message_count + (changed if from_seq is None else -changed))
        return changed

    # ------------------------------------------------------------------ file history
    async def add_file_version(self, session_id: str, path: str, content: str | None, *,
                               run_id: str | None = None, message_id: str | None = None) -> int:
        """Keep one version of a file (None: it does not exist). With `run_id` and `message_id`
        (the run's user message) it is a change of that run; without, a state the agent found."""
        path, content = storable(path), _storable_or_none(content)

        def write() -> int:
            row = self.db.execute(
                "SELECT COALESCE(MAX(version), -1) FROM files WHERE path=? AND session_id=?",
                (path, session_id),
            ).fetchone()
            version: int = row[0] + 1
            self.db.execute(
                "INSERT INTO files (id, session_id, path, content, version, created_at, run_id, message_id) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (new_id(), session_id, path, content, version, now(), run_id, message_id),
            )
            return version

        return await self._call(write)

    async def file_history(self, session_id: str) -> list[dict[str, Any]]:
        """Every file version of the session in the order they were kept, with the seq of the user
        message of the run that made it and whether a rewind hides it (`hidden`)."""
        def read() -> list[dict[str, Any]]:
            rows = self.db.execute(
                """SELECT f.path, f.content, f.run_id, f.message_id, m.seq AS message_seq,
                          m.hidden_by IS NOT NULL AS hidden
                   FROM files f LEFT JOIN messages m ON m.id = f.message_id
                   WHERE f.session_id=? ORDER BY f.rowid""", (session_id,))
            return [dict(r) for r in rows]

        return await self._call(read)

    async def known_paths(self, session_id: str, limit: int) -> list[str]:
        """The files the session viewed or changed, most recent first, at most `limit`."""
        return await self._call(lambda: [r[0] for r in self.db.execute(
            """SELECT path FROM (SELECT path, read_at AS at FROM read_files WHERE session_id=?
                                 UNION ALL SELECT path, created_at AS at FROM files WHERE session_id=?)
               GROUP BY path ORDER BY MAX(at) DESC LIMIT ?""", (session_id, session_id, limit))])

    async def add_file_versions(self, session_id: str, versions: list[tuple[str, str | None]]) -> None:
        """Keep states the agent did not make (a rewind's or a review's writes), in one job."""
        async def one(path: str, content: str | None) -> None:
            await self.add_file_version(session_id, path, content)

        await asyncio.gather(*(one(path, content) for path, content in versions))

    # ------------------------------------------------------------------ rewinds and reviews
    async def save_rewind(self, rewind: dict[str, Any]) -> None:
        await self._call(lambda: self.db.execute(
            "INSERT INTO rewinds (id, session_id, message_id, last_seq, files, summary_message_id, undone, "
            "created_at) VALUES (?,?,?,?,?,?,0,?)",
            (rewind["id"], rewind["session_id"], rewind["message_id"], rewind["last_seq"],
             json.dumps(rewind["files"]), rewind["summary_message_id"], now())))

    async def last_rewind(self, session_id: str) -> dict[str, Any] | None:
        """The session's newest rewind not undone yet."""
        def read() -> dict[str, Any] | None:
            row = self.db.execute("SELECT * FROM rewinds WHERE session_id=? AND undone=0 ORDER BY rowid DESC LIMIT 1",
                                  (session_id,)).fetchone()
            return None if row is None else dict(row, files=json.loads(row["files"]))

        return await self._call(read)

    async def rewind_undone(self, rewind_id: str) -> None:
        await self._call(lambda: self.db.execute("UPDATE rewinds SET undone=1 WHERE id=?", (rewind_id,)))

    async def hunk_reviews(self, session_id: str) -> dict[tuple[str, str], str]:
        """(path, hunk id) -> "accept" or "reject"."""
        def read() -> dict[tuple[str, str], str]:
            rows = self.db.execute("SELECT path, hunk_id, decision FROM hunk_reviews WHERE session_id=?",
                                   (session_id,))
            return {(r["path"], r["hunk_id"]): r["decision"] for r in rows}

        return await self._call(read)

    async def save_hunk_reviews(self, session_id: str, path: str, decisions: Sequence[tuple[str, str]]) -> None:
        path = storable(path)
        await self._call(lambda: self.db.executemany(
            "INSERT INTO hunk_reviews (session_id, path, hunk_id, decision, created_at) VALUES (?,?,?,?,?) "
            "ON CONFLICT(session_id, path, hunk_id) DO UPDATE SET decision=excluded.decision",
            [(session_id, path, hunk_id, decision, now()) for hunk_id, decision in decisions]))

    async def file_versions(self, path: str, session_id: str | None = None) -> list[dict[str, Any]]:
        path = storable(path)

        def read() -> list[dict[str, Any]]:
            sql = "SELECT session_id, path, content, version, created_at FROM files WHERE path=?"
            args: tuple[Any, ...] = (path,)
            if session_id is not None:
                sql += " AND session_id=?"
                args += (session_id,)
            return [dict(r) for r in self.db.execute(sql + " ORDER BY created_at, version", args)]

        return await self._call(read)

    def record_read(self, session_id: str, path: str, mtime: float | None) -> None:
        path = storable(path)  # a file name that is not UTF-8 decodes to lone surrogates
        self._write(
            lambda: self.db.execute(
                "INSERT INTO read_files (session_id, path, read_at, mtime) VALUES (?,?,?,?) "
                "ON CONFLICT(path, session_id) DO UPDATE SET read_at=excluded.read_at, mtime=excluded.mtime",
                (session_id, path, now(), mtime),
            ),
            session_id=session_id,
        )

    async def last_read(self, session_id: str, path: str) -> tuple[float, float | None] | None:
        path = storable(path)

        def read() -> tuple[float, float | None] | None:
            row = self.db.execute(
                "SELECT read_at, mtime FROM read_files WHERE session_id=? AND path=?", (session_id, path)
            ).fetchone()
            return (row["read_at"], row["mtime"]) if row else None

        return await self._call(read)

    # ------------------------------------------------------------------ lifetime
    async def flush(self) -> None:
        """Wait until every write queued so far is committed (or has failed and been reported)."""
        await self._call(lambda: None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True  # later calls fail at once instead of waiting on a stopped thread
        self._hand_off()
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._writer.join)


class Checkpointer:
    """Folds the WAL back into the database file on its own connection and thread.

    sqlite does it by default inside the COMMIT that fills the WAL past 1,000
    pages: a few milliseconds of copying and fsync that every write of that
    batch waited for (a run's `message_finished`, and its `run_complete`, every
    70th prompt). A passive checkpoint runs beside the writer's transactions.
    """

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._asked: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self.every = CHECKPOINT_EVERY  # commits between two requests, set from the pages each found
        self._thread = threading.Thread(target=self._run, name="crush-ls-db-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._asked.put(True)

    def stop(self) -> None:
        self._asked.put(False)
        self._thread.join()
        self._db.close()  # before the writer's own close: the last connection's close removes the WAL

    def _run(self) -> None:
        while self._asked.get():
            try:
                pages = self._checkpoint()
            except sqlite3.Error as exc:  # the next one, or the close, folds what this one left
                log.warning("storage checkpoint failed: %s", exc)
                continue
            self.every = max(8, min(4096, self.every * CHECKPOINT_PAGES // max(pages, 1)))

    def _checkpoint(self) -> int:
        """Fold every page of the WAL; returns how many it held. Pages committed meanwhile are folded
        too (a few tries): only a WAL folded to its end starts over at the next write, else it
        grows for as long as writes keep coming."""
        _busy, pages, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        for _ in range(3):
            if done >= pages:
                break
            _busy, pages, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(pages)


def _settle_futures(outcomes: list[Outcome]) -> None:
    for future, result, error, _session_id, _is_write in outcomes:
        assert future is not None
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
