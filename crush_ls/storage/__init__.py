"""A workspace's sessions, messages and file history, in SQLite.

- `records`: `Session` and `Message`, as the agent works with them (no wire forms);
- `schema`: the tables and their ordered migrations (`PRAGMA user_version`);
- `store`: `Store`, the writer thread and everything read or written.
"""

from __future__ import annotations

from .records import DEFAULT_TITLE, Message, Session, new_id, now
from .schema import DB_NAME
from .store import Store, prepare_data_directory

__all__ = ["DB_NAME", "DEFAULT_TITLE", "Message", "Session", "Store", "new_id", "now", "prepare_data_directory"]
