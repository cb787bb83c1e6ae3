"""What a `bash` command did to the files the session knows (viewed or changed).

A command can change or delete any file, and only the files the session has
viewed or edited can be compared: their text is read before the command and
again after it, and each that changed is kept as a change of the run, like
an edit (agent/changes, agent/rewind). Files a command creates that the
session never saw are not tracked. Bounded: the MAX_FILES files the session
touched last, of at most MAX_BYTES each and MAX_TOTAL together, text only.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .base import ToolContext
from .editing import keep_change

MAX_FILES = 200
MAX_BYTES = 1024 * 1024
MAX_TOTAL = 8 * 1024 * 1024  # read before every command: the newest files first, the rest not compared
UNREADABLE = object()  # a directory, a binary or too large a file: not compared

Snapshot = dict[Path, "str | object | None"]


def read_state(path: Path) -> str | object | None:
    """The file's text, None when it does not exist, UNREADABLE when it is not comparable."""
    try:
        if path.is_symlink() or not path.is_file():
            return None if not path.exists() and not path.is_symlink() else UNREADABLE
        if path.stat().st_size > MAX_BYTES:
            return UNREADABLE
        data = path.read_bytes()
    except OSError:
        return UNREADABLE
    if b"\0" in data:
        return UNREADABLE
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return UNREADABLE


def _read_all(paths: list[Path]) -> Snapshot:
    found: Snapshot = {}
    total = 0
    for path in paths:
        state = read_state(path) if total < MAX_TOTAL else UNREADABLE
        total += len(state) if isinstance(state, str) else 0
        found[path] = state
    return found


async def snapshot(ctx: ToolContext) -> Snapshot:
    paths = [Path(p) for p in await ctx.store.known_paths(ctx.session_id, MAX_FILES)]
    return await asyncio.to_thread(_read_all, paths)


async def keep_command_changes(ctx: ToolContext, before: Snapshot) -> None:
    compared = [path for path, state in before.items() if state is not UNREADABLE]
    after = await asyncio.to_thread(lambda: {path: read_state(path) for path in compared})
    for path in compared:
        old, new = before[path], after[path]
        if old is UNREADABLE or new is UNREADABLE or new == old:
            continue
        await keep_change(ctx, path, old if isinstance(old, str) else None, new if isinstance(new, str) else None)
