"""What `write`, `edit` and `multiedit` share: reading a text file, the
"viewed and unchanged since" check, writing, history versions and the diff.

A change is read-check-modify-write in one worker-thread call under a lock
per file, so two calls of this process never interleave on one file, and the
mtime check happens right before the write.
"""

from __future__ import annotations

import asyncio
import difflib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from stat import S_ISDIR
from typing import Any

import attrs

from .base import EditorConflict, Files, ToolContext, ToolResult
from .paths import ToolInputError, open_checked, open_checked_file, read_fd, relative_display
from .walk import is_binary

MAX_EDIT_BYTES = 10 * 1024 * 1024
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_editor_locks: dict[str, asyncio.Lock] = {}  # the same, for changes made through the editor


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


@attrs.define
class TextFile:
    exists: bool
    content: str  # with "\n" line ends
    crlf: bool  # the file used "\r\n": it is written back that way
    mtime: float | None
    raw: str = ""  # exactly as read, for the history

    def on_disk(self) -> str | None:
        return self.raw if self.exists else None


def as_written(content: str, crlf: bool) -> str:
    return content.replace("\n", "\r\n") if crlf else content


def read_text(path: Path) -> TextFile:
    """The file at the checked `path` (opened without following a symlink swapped in since the check)."""
    opened = open_checked_file(path)
    if opened is None:
        return TextFile(exists=False, content="", crlf=False, mtime=None)
    fd, stat = opened
    try:
        if S_ISDIR(stat.st_mode):
            raise ToolInputError(f"{path} is a directory")
        if stat.st_size > MAX_EDIT_BYTES:
            raise ToolInputError(f"{path} is too large to edit ({stat.st_size} bytes, max {MAX_EDIT_BYTES})")
        raw = read_fd(fd)
    finally:
        os.close(fd)
    if is_binary(raw):
        raise ToolInputError(f"{path} is a binary file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolInputError(f"{path} is not UTF-8 text") from exc
    crlf = "\r\n" in text
    return TextFile(exists=True, content=text.replace("\r\n", "\n"), crlf=crlf, mtime=stat.st_mtime, raw=text)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n")


def write_text(path: Path, content: str, crlf: bool) -> float:
    """Write the checked `path` (missing folders made; no symlink followed); its new mtime."""
    fd = open_checked(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, make_parents=True)
    try:
        data = as_written(content, crlf).encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)


def check_fresh(path: Path, display: str, current: TextFile, last_read: tuple[float, float | None] | None,
                *, must_have_read: bool) -> None:
    """Refuse to change a file the model has not seen as it is now."""
    if last_read is None:
        if must_have_read and current.exists:
            raise ToolInputError(f"You must view {display} (view tool) before editing it.")
        return
    if current.exists and current.mtime != last_read[1]:
        raise ToolInputError(
            f"{display} was modified since you last viewed it; view it again before changing it."
        )


def apply_edit(content: str, old: str, new: str, replace_all: bool, label: str = "") -> str:
    """One string replacement with Crush's rules; `label` prefixes errors (multiedit)."""
    old, new = normalize_newlines(old), normalize_newlines(new)
    if old == new:
        raise ToolInputError(f"{label}old_string and new_string are identical; nothing to change")
    count = content.count(old)
    if count == 0:
        raise ToolInputError(
            f"{label}old_string not found in the file. It must match exactly, including whitespace "
            "and line breaks." + closest_region(content, old)
        )
    if count > 1 and not replace_all:
        raise ToolInputError(
            f"{label}old_string appears {count} times in the file; add surrounding context to make it "
            "unique, or set replace_all to true."
        )
    return content.replace(old, new) if replace_all else content.replace(old, new, 1)


def closest_region(content: str, old: str, context: int = 2) -> str:
    """The lines of the file that look most like `old` (ignoring indentation), as a retry hint."""
    wanted = [line.strip() for line in old.strip("\n").split("\n")]
    lines = content.split("\n")
    # The search compares every window: skip it where it would take seconds.
    if not any(wanted) or len(lines) < len(wanted) or len(lines) * len(wanted) > 2_000_000:
        return " View the file again to see its current text."
    scores = [
        (sum(lines[start + i].strip() == w for i, w in enumerate(wanted) if w), start)
        for start in range(len(lines) - len(wanted) + 1)
    ]
    score, start = max(scores, key=lambda pair: (pair[0], -pair[1]))
    if score * 2 < len([w for w in wanted if w]):
        return " Nothing in the file looks like it; view the file again."
    first, last = max(0, start - context), min(len(lines), start + len(wanted) + context)
    shown = "\n".join(f"{n + 1:6}|{lines[n]}" for n in range(first, last))
    return f" The closest text is at lines {start + 1}-{start + len(wanted)}:\n{shown}"


def unified_diff(old: str, new: str, display: str) -> tuple[str, int, int]:
    """A git-style unified diff and its counts of added and removed lines."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"a/{display}", tofile=f"b/{display}",
    )
    out, additions, removals = [], 0, 0
    for line in lines:
        if line.startswith("+") and not line.startswith("+++"):
            additions += 1
        elif line.startswith("-") and not line.startswith("---"):
            removals += 1
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out), additions, removals


@attrs.define
class Change:
    old: TextFile
    new_content: str
    new_mtime: float | None
    note: str | None = None  # for the result: how the editor took it (the disk differs...)


async def change_file(
    ctx: ToolContext,
    path: Path,
    modify: Callable[[TextFile], str],
    *,
    must_have_read: bool,
) -> Change:
    """Read, check, modify and write one file, then keep its versions and the new mtime.

    `modify` gets the current file and returns the new content (or raises
    ToolInputError: nothing is written).
    """
    display = relative_display(ctx.root, path)
    last_read = await ctx.store.last_read(ctx.session_id, str(path))
    if ctx.files is not None and ctx.files.covers(path):
        async with _editor_locks.setdefault(str(path), asyncio.Lock()):
            change = await _change_through(ctx.files, ctx.session_id, path, display, last_read, modify,
                                           must_have_read=must_have_read)
    else:
        change = await asyncio.to_thread(_change_on_disk, path, display, last_read, modify, must_have_read)
    await _keep_versions(ctx, path, change)
    ctx.store.record_read(ctx.session_id, str(path), change.new_mtime)
    if ctx.files is not None:
        after = await ctx.files.after_edit(ctx.session_id, path, change.old.content, change.new_content)
        change.note = "\n".join(n for n in (change.note, after) if n) or None
    return change


def _change_on_disk(path: Path, display: str, last_read: tuple[float, float | None] | None,
                    modify: Callable[[TextFile], str], must_have_read: bool) -> Change:
    with _lock_for(path):
        current = read_text(path)
        check_fresh(path, display, current, last_read, must_have_read=must_have_read)
        new_content = modify(current)
        if current.exists and new_content == current.content:
            raise ToolInputError(f"{display} already has this content; nothing was changed")
        mtime = write_text(path, new_content, current.crlf)
        return Change(old=current, new_content=new_content, new_mtime=mtime)


def write_locked(path: Path, content: str) -> float:
    """Write `content` exactly (line ends included) under the file's lock; its new mtime."""
    with _lock_for(path):
        return write_text(path, content, crlf=False)


async def _change_through(files: Files, session_id: str, path: Path, display: str,
                          last_read: tuple[float, float | None] | None, modify: Callable[[TextFile], str],
                          *, must_have_read: bool) -> Change:
    """`change_file`'s read-check-modify-write with the editor's text. The editor may refuse
    (its text changed meanwhile): the change is made again on its new text, once."""
    if path.is_dir():
        raise ToolInputError(f"{path} is a directory")
    for attempt in (1, 2):
        try:
            current = await _read_through(files, session_id, path, display)
            if attempt == 1:  # the retry is of the model's change on the text that came meanwhile
                check_fresh(path, display, current, last_read, must_have_read=must_have_read)
            new_content = modify(current)
            if current.exists and new_content == current.content:
                raise ToolInputError(f"{display} already has this content; nothing was changed")
            written = as_written(new_content, current.crlf)
            note = await files.write_text(session_id, path, written, current.raw if current.exists else None)
            return Change(old=current, new_content=new_content, new_mtime=files.stamp(path, written), note=note)
        except EditorConflict as exc:
            conflict = exc
    raise ToolInputError(f"{display} changed in the editor while the edit was applied ({conflict}); "
                         "view it again before changing it")


async def _read_through(files: Files, session_id: str, path: Path, display: str) -> TextFile:
    try:
        text: str | None = await files.read_text(session_id, path)
    except (ToolInputError, EditorConflict):
        raise
    except Exception as exc:
        if path.exists():
            raise ToolInputError(f"cannot read {display}: {exc}") from exc
        text = None
    if text is None:
        return TextFile(exists=False, content="", crlf=False, mtime=None)
    crlf = "\r\n" in text
    return TextFile(exists=True, content=text.replace("\r\n", "\n"), crlf=crlf, mtime=files.stamp(path, text),
                    raw=text)


async def _keep_versions(ctx: ToolContext, path: Path, change: Change) -> None:
    """Keep the content before the change (None: there was no file) and after.

    The old content is stored unless it is the session's latest version
    already, so a change made on disk between two tool changes is kept too.
    The new one is kept as a change of the run (agent/changes, agent/rewind).
    """
    await keep_change(ctx, path, change.old.on_disk(), as_written(change.new_content, change.old.crlf))


async def keep_change(ctx: ToolContext, path: Path, old: str | None, new: str | None) -> None:
    """Keep a change the run made to `path` (None: no file): the state found, if not the latest kept, then its own."""
    versions = await ctx.store.file_versions(str(path), ctx.session_id)
    if not versions or versions[-1]["content"] != old:
        await ctx.store.add_file_version(ctx.session_id, str(path), old)
    await ctx.store.add_file_version(ctx.session_id, str(path), new, run_id=ctx.run_id, message_id=ctx.message_id)


def change_result(ctx: ToolContext, path: Path, change: Change, summary: str) -> ToolResult:
    display = relative_display(ctx.root, path)
    diff, additions, removals = unified_diff(change.old.content, change.new_content, display)
    metadata: dict[str, Any] = {"diff": diff, "path": display, "additions": additions, "removals": removals}
    content = f"{summary} {display} (+{additions} -{removals} lines)"
    return ToolResult(content + (f"\n{change.note}" if change.note else ""), metadata=metadata)


def ensure_file_path(raw: str) -> None:
    if not raw.strip():
        raise ToolInputError("file_path must not be empty")
    if raw.endswith(("/", os.sep)):
        raise ToolInputError(f"file_path {raw!r} names a directory")
