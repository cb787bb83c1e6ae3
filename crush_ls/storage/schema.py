"""The database's tables, and the ordered migrations that bring any database to them.

`PRAGMA user_version` says which migrations a database has had: version N
has had the first N of `MIGRATIONS`. Databases written before versions
existed read 0; migration 1 is the schema they already have (every
statement is `IF NOT EXISTS`), so they and new files alike end at the
latest version. A schema change is a new migration appended to the list,
never an edit of an old one. Each migration runs in its own transaction
with the version bump, so a failed one leaves the database as it was.
"""

from __future__ import annotations

import sqlite3

DB_NAME = "crush-ls.db"

_V1 = (
    """CREATE TABLE IF NOT EXISTS sessions (
        id TEXT PRIMARY KEY,
        parent_session_id TEXT,
        title TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0,
        summary_message_id TEXT,
        todos TEXT NOT NULL DEFAULT '[]',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS messages (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        parts TEXT NOT NULL DEFAULT '[]',
        model TEXT,
        provider TEXT,
        is_summary INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS messages_by_session ON messages(session_id, seq)",
    """CREATE TABLE IF NOT EXISTS files (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        content TEXT,
        version INTEGER NOT NULL,
        created_at REAL NOT NULL,
        UNIQUE(path, session_id, version)
    )""",
    "CREATE INDEX IF NOT EXISTS files_by_path ON files(path)",
    """CREATE TABLE IF NOT EXISTS read_files (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        read_at REAL NOT NULL,
        mtime REAL,
        PRIMARY KEY (path, session_id)
    )""",
)

# Who opened the database and who closed it cleanly (storage.repair.Tenancy). A database
# from before it counts one opening that never closed: whatever it left open is repaired once.
_V2 = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta (key, value) VALUES ('opened', 1), ('closed', 0)",
)

# Review and rewind (issue 13): which run and user message made each file version (NULL: a
# state the agent found, not a change of its own), messages hidden by a rewind (kept for
# agent/unrewind), the rewinds with what they wrote, and the per-hunk review decisions.
_V3 = (
    "ALTER TABLE files ADD COLUMN run_id TEXT",
    "ALTER TABLE files ADD COLUMN message_id TEXT",
    "CREATE INDEX IF NOT EXISTS files_by_session ON files(session_id)",
    "ALTER TABLE messages ADD COLUMN hidden_by TEXT",
    """CREATE TABLE IF NOT EXISTS rewinds (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        message_id TEXT NOT NULL,
        last_seq INTEGER NOT NULL,
        files TEXT NOT NULL DEFAULT '[]',
        summary_message_id TEXT,
        undone INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS hunk_reviews (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        hunk_id TEXT NOT NULL,
        decision TEXT NOT NULL,
        created_at REAL NOT NULL,
        PRIMARY KEY (session_id, path, hunk_id)
    )""",
)

# MIGRATIONS[n] takes a database from version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [_V1, _V2, _V3]


class SchemaTooNew(Exception):
    """The database was written by a newer crush-ls; opening it could lose what that one stored."""


def version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: list[tuple[str, ...]] = MIGRATIONS) -> int:
    """Apply the migrations `db` has not had, in order; returns the version it ends at.

    `db` must be in autocommit mode (isolation_level None): each migration
    is its own explicit transaction.
    """
    current = version(db)
    if current > len(migrations):
        raise SchemaTooNew(
            f"the database has schema version {current}, newer than this crush-ls knows ({len(migrations)}): "
            "use a newer crush-ls or another data directory")
    for target in range(current + 1, len(migrations) + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in migrations[target - 1]:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {target}")  # a PRAGMA takes no bound parameters
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return len(migrations)
